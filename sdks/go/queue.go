package phlask

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
)

// Queue enqueues tasks onto one backend. Open returns one; it is safe for concurrent use.
type Queue interface {
	// Push validates task, signs it when the queue has a signing key, and stores it as
	// the backend document in spec/backends/ prescribes. It returns the task id.
	Push(ctx context.Context, task *Task) (string, error)
	// PushMany validates every task before storing any, then stores them in one batch:
	// all or none on SQLite (one transaction); in order up to the first error on MongoDB
	// (an ordered insertMany); each publish confirmed on RabbitMQ, with no rollback.
	// A batch that repeats an id is refused with ErrDuplicateID before anything is
	// stored. It returns the ids in order.
	PushMany(ctx context.Context, tasks []*Task) ([]string, error)
	// Close releases the connection. Pushing afterwards fails.
	Close() error
}

// ErrDuplicateID is matched (errors.Is) by the error of a push whose task id the backend
// already holds, or that a batch repeats. The concrete error is a *DuplicateIDError.
var ErrDuplicateID = errors.New("duplicate task id")

// ErrConfig is matched by the error of Open for a URL or an option it cannot use.
var ErrConfig = errors.New("invalid queue configuration")

// ErrClosed is matched by the error of a push on a closed queue.
var ErrClosed = errors.New("queue is closed")

// DuplicateIDError names the task id that is already taken. It wraps the driver's error
// when the backend reported the conflict.
type DuplicateIDError struct {
	ID  string
	Err error
}

func (e *DuplicateIDError) Error() string {
	return fmt.Sprintf("a task with id %q already exists; ids must be unique", e.ID)
}

// Is makes errors.Is(err, ErrDuplicateID) true.
func (e *DuplicateIDError) Is(target error) bool { return target == ErrDuplicateID }

func (e *DuplicateIDError) Unwrap() error { return e.Err }

// BackendError is the error of every Open and push that failed at the backend. URL is the
// queue URL with any password removed. Err is the cause: a *DuplicateIDError, an error
// matching ErrConfig or ErrClosed, or the driver's own error, so errors.Is and
// errors.As see through it.
type BackendError struct {
	URL string
	Op  string // "open", "push" or "close"
	Err error
}

func (e *BackendError) Error() string { return fmt.Sprintf("phlask: %s %s: %v", e.Op, e.URL, e.Err) }

func (e *BackendError) Unwrap() error { return e.Err }

// OpenOption configures a queue opened by Open.
type OpenOption func(*openConfig)

type openConfig struct {
	keyID  string
	secret string
	signed bool
}

// WithSigningKey signs every envelope pushed through the queue with HMAC-SHA256 under
// secret (its UTF-8 bytes), and stores keyID and the signature beside the envelope.
// Runners with a keyring refuse unsigned tasks and tasks signed with a key id they do not
// hold. keyID is 1-64 of A-Z a-z 0-9 . _ - and secret must not be empty.
func WithSigningKey(keyID, secret string) OpenOption {
	return func(c *openConfig) { c.keyID, c.secret, c.signed = keyID, secret, true }
}

// message is one task ready for a backend: the bytes and what travels beside them.
type message struct {
	task      *Task
	body      []byte
	signature string // "" when unsigned
	keyID     string
}

// backend is one storage protocol of spec/backends/.
type backend interface {
	// enqueue stores the messages as the backend document prescribes. It returns a
	// *DuplicateIDError (wrapping the driver error) for an id that is taken.
	enqueue(ctx context.Context, msgs []message) error
	close() error
}

// Open connects to the queue backend at rawURL:
//
//	sqlite:///var/lib/phlask/queue.db    (or sqlite:relative/queue.db)
//	mongodb://host:27017/phlask           (the database is the URL's path)
//	amqp://user:password@host:5672/%2F    (amqps:// for TLS)
//
// Errors are *BackendError values naming the URL (password removed) and wrapping the
// cause: ErrConfig for a URL it cannot use, or the driver's error.
func Open(ctx context.Context, rawURL string, opts ...OpenOption) (Queue, error) {
	shown := redact(rawURL)
	var cfg openConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	fail := func(err error) (Queue, error) { return nil, &BackendError{URL: shown, Op: "open", Err: err} }
	if cfg.signed {
		if !ValidKeyID(cfg.keyID) {
			return fail(fmt.Errorf("%w: signing key id %q must be 1-64 characters of A-Z a-z 0-9 . _ -", ErrConfig, cfg.keyID))
		}
		if cfg.secret == "" {
			return fail(fmt.Errorf("%w: signing key %q has an empty secret", ErrConfig, cfg.keyID))
		}
	}
	scheme, _, _ := strings.Cut(rawURL, ":")
	var (
		b   backend
		err error
	)
	switch strings.ToLower(scheme) {
	case "sqlite":
		b, err = openSQLite(ctx, rawURL)
	case "mongodb", "mongodb+srv":
		b, err = openMongo(ctx, rawURL)
	case "amqp", "amqps":
		b, err = openRabbit(ctx, rawURL)
	default:
		err = fmt.Errorf("%w: scheme %q is not sqlite:, mongodb: or amqp:", ErrConfig, scheme)
	}
	if err != nil {
		return fail(err)
	}
	return &queue{url: shown, backend: b, cfg: cfg}, nil
}

// redact removes the password from a URL that has one, for error messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		if i := strings.Index(rawURL, "@"); i >= 0 && strings.Contains(rawURL[:i], "://") {
			// Unparseable but credential-shaped: keep the scheme and host only.
			scheme, _, _ := strings.Cut(rawURL, "://")
			return scheme + "://xxxxx@" + rawURL[i+1:]
		}
		return rawURL
	}
	return u.Redacted()
}

type queue struct {
	url     string
	backend backend
	cfg     openConfig
	closed  atomic.Bool
}

func (q *queue) Push(ctx context.Context, task *Task) (string, error) {
	ids, err := q.push(ctx, []*Task{task})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

func (q *queue) PushMany(ctx context.Context, tasks []*Task) ([]string, error) {
	return q.push(ctx, tasks)
}

func (q *queue) push(ctx context.Context, tasks []*Task) ([]string, error) {
	msgs := make([]message, len(tasks))
	ids := make([]string, len(tasks))
	seen := make(map[string]bool, len(tasks))
	for i, t := range tasks {
		if err := t.Validate(); err != nil {
			if len(tasks) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("task %d of %d: %w", i+1, len(tasks), err)
		}
		if seen[t.id] {
			return nil, &BackendError{URL: q.url, Op: "push", Err: &DuplicateIDError{ID: t.id}}
		}
		seen[t.id] = true
		msgs[i] = message{task: t, body: t.body}
		if q.cfg.signed {
			msgs[i].signature = Sign(t.body, q.cfg.secret)
			msgs[i].keyID = q.cfg.keyID
		}
		ids[i] = t.id
	}
	if q.closed.Load() {
		return nil, &BackendError{URL: q.url, Op: "push", Err: ErrClosed}
	}
	if len(msgs) == 0 {
		return ids, nil
	}
	if err := q.backend.enqueue(ctx, msgs); err != nil {
		return nil, &BackendError{URL: q.url, Op: "push", Err: err}
	}
	return ids, nil
}

func (q *queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	if err := q.backend.close(); err != nil {
		return &BackendError{URL: q.url, Op: "close", Err: err}
	}
	return nil
}
