package phlask

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Version is this SDK's version, written to every envelope as producer.version.
const Version = "0.1.0"

// SDKName is written to every envelope as producer.sdk.
const SDKName = "phlask-go"

// timestampLayout is the producer format of spec/README.md 2.5: UTC, three fraction
// digits, Z.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// FormatTimestamp writes t as every phlask producer writes timestamps:
// UTC with exactly three fraction digits and Z, such as 2026-11-28T02:44:03.123Z.
// Sub-millisecond precision is truncated.
func FormatTimestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }

// Backoff is the retry delay policy of a task (spec/README.md 5.4): the delay before
// attempt n+1 is min(Max, Initial * Factor^(n-1)), times a random factor in [0.5, 1)
// when Jitter is true. Start from DefaultBackoff and change what you need: the zero
// Backoff has Factor 0, which is refused, and Jitter off.
type Backoff struct {
	Initial time.Duration // delay before the second attempt, 0 to 7 days
	Factor  float64       // multiplier per further attempt, 1 to 100
	Max     time.Duration // upper bound of any single delay, 0 to 7 days
	Jitter  bool          // randomise each delay
}

// DefaultBackoff returns the protocol's default policy (spec/wire.json defaults.backoff):
// 1 s, factor 2, at most 300 s, with jitter.
func DefaultBackoff() Backoff {
	d := wire.Defaults.Backoff
	return Backoff{
		Initial: seconds(d.Initial),
		Factor:  d.Factor,
		Max:     seconds(d.Max),
		Jitter:  d.Jitter,
	}
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// envelope is the wire form, members in the order of spec/README.md 2.2.
type envelope struct {
	Phlask      int               `json:"phlask"`
	ID          string            `json:"id"`
	Queue       string            `json:"queue"`
	Lang        string            `json:"lang"`
	File        *string           `json:"file,omitempty"`
	Code        *string           `json:"code,omitempty"`
	Args        []string          `json:"args"`
	Env         map[string]string `json:"env"`
	Input       json.RawMessage   `json:"input,omitempty"` // nil: no input; "null": JSON null
	Timeout     *float64          `json:"timeout,omitempty"`
	MaxAttempts int               `json:"max_attempts"`
	Backoff     backoffJSON       `json:"backoff"`
	Priority    int               `json:"priority"`
	NotBefore   string            `json:"not_before,omitempty"`
	ExpiresAt   string            `json:"expires_at,omitempty"`
	CreatedAt   string            `json:"created_at"`
	Meta        map[string]string `json:"meta"`
	Producer    *producerJSON     `json:"producer,omitempty"`
}

type backoffJSON struct {
	Initial float64 `json:"initial"`
	Factor  float64 `json:"factor"`
	Max     float64 `json:"max"`
	Jitter  bool    `json:"jitter"`
}

type producerJSON struct {
	SDK     string `json:"sdk"`
	Version string `json:"version"`
	Host    string `json:"host,omitempty"`
}

// Task is one built, validated envelope. Build it with NewTask or NewInlineTask; it is
// immutable and safe to push from several goroutines and to several queues. Its bytes
// (Envelope) are exactly what is stored, signed and delivered.
type Task struct {
	id        string
	queue     string
	priority  int
	notBefore time.Time // zero when the task is ready at once
	expiresAt time.Time // zero when it never expires
	body      []byte
}

// Option sets one field of a task being built.
type Option func(*builder)

type builder struct {
	env       envelope
	delay     *time.Duration
	notBefore time.Time
	expiresAt time.Time
	clock     func() time.Time
	errs      []FieldError
}

func (b *builder) fail(path, format string, args ...any) {
	b.errs = append(b.errs, FieldError{path, fmt.Sprintf(format, args...)})
}

// WithID sets the task id (1-128 of A-Z a-z 0-9 . _ : -). Without it the task gets a
// fresh UUIDv7. A backend refuses a second task with an id it still holds (ErrDuplicateID).
func WithID(id string) Option { return func(b *builder) { b.env.ID = id } }

// WithQueue sets the queue (default "default"): a-z or 0-9, then up to 63 of a-z 0-9 . _ -.
func WithQueue(queue string) Option { return func(b *builder) { b.env.Queue = queue } }

// WithArgs sets the arguments passed after the script, verbatim (never through a shell).
func WithArgs(args ...string) Option {
	return func(b *builder) { b.env.Args = append([]string{}, args...) }
}

// WithEnv sets variables added to the task's clean environment, replacing any set before.
// Names the runners deny (PHLASK_*, LD_*, PYTHONPATH, ...) pass validation but the task is
// then refused at run time (dead reason forbidden_env).
func WithEnv(env map[string]string) Option {
	return func(b *builder) {
		b.env.Env = make(map[string]string, len(env))
		for k, v := range env {
			b.env.Env[k] = v
		}
	}
}

// WithInput sets the JSON value written to the task's stdin. Any value encoding/json can
// encode is accepted; nil means JSON null, which the task receives as `null` (a task
// without WithInput gets an empty stdin instead). Pass a json.RawMessage or json.Number to
// keep numbers such as 9007199254740993 exact.
func WithInput(v any) Option {
	return func(b *builder) {
		raw, err := marshal(v)
		if err != nil {
			b.fail("$.input", "cannot encode as JSON: %v", err)
			return
		}
		b.env.Input = raw
	}
}

// WithTimeout sets how long one attempt may run (more than 0, at most 7 days). Without it
// the runner's default applies (one hour unless configured otherwise).
func WithTimeout(d time.Duration) Option {
	return func(b *builder) {
		s := d.Seconds()
		b.env.Timeout = &s
	}
}

// WithMaxAttempts sets how many attempts the task may have in all, 1-100 (default 1).
func WithMaxAttempts(n int) Option { return func(b *builder) { b.env.MaxAttempts = n } }

// WithBackoff sets the retry delays. Start from DefaultBackoff:
//
//	bo := phlask.DefaultBackoff()
//	bo.Initial = 5 * time.Second
//	phlask.WithBackoff(bo)
func WithBackoff(bo Backoff) Option {
	return func(b *builder) {
		if math.IsNaN(bo.Factor) || math.IsInf(bo.Factor, 0) {
			b.fail("$.backoff.factor", "must be a finite number, got %v", bo.Factor)
			bo.Factor = 0
		}
		b.env.Backoff = backoffJSON{
			Initial: bo.Initial.Seconds(),
			Factor:  bo.Factor,
			Max:     bo.Max.Seconds(),
			Jitter:  bo.Jitter,
		}
	}
}

// WithPriority sets the priority, 0-9 (default 0); higher runs first among ready tasks.
func WithPriority(p int) Option { return func(b *builder) { b.env.Priority = p } }

// WithDelay makes the task ready d after it is built: not_before is created_at plus d,
// rounded to the millisecond. d must be >= 0; it cannot be combined with WithNotBefore.
func WithDelay(d time.Duration) Option {
	return func(b *builder) { b.delay = &d }
}

// WithNotBefore makes the task ready at t (written in UTC with millisecond precision).
// The zero time means ready at once.
func WithNotBefore(t time.Time) Option { return func(b *builder) { b.notBefore = t } }

// WithExpiresAt has a runner that claims the task after t settle it dead with reason
// expired instead of running it. The zero time means it never expires.
func WithExpiresAt(t time.Time) Option { return func(b *builder) { b.expiresAt = t } }

// WithMeta sets opaque string pairs for the producer's own use (trace ids, tenant), at
// most 64, replacing any set before. Runners do not interpret them.
func WithMeta(meta map[string]string) Option {
	return func(b *builder) {
		b.env.Meta = make(map[string]string, len(meta))
		for k, v := range meta {
			b.env.Meta[k] = v
		}
	}
}

// WithClock replaces time.Now as the source of created_at (and of not_before with
// WithDelay). For tests.
func WithClock(now func() time.Time) Option { return func(b *builder) { b.clock = now } }

// NewTask builds a task that runs the script file (a path on the runner host, relative
// to its task roots or absolute) with the adapter lang ("php", "node", "python",
// "shell", ...).
//
// Every default is written explicitly, created_at is the build time and the id a UUIDv7
// unless WithID gives one. The envelope is validated against spec/task.schema.json; the
// error is a *ValidationError naming every bad field by its JSON path.
func NewTask(lang, file string, opts ...Option) (*Task, error) {
	return build(lang, &file, nil, opts)
}

// NewInlineTask builds a task that runs the source code with the adapter lang. Runners
// refuse inline code (dead reason inline_refused) unless their operator allowed it.
// Otherwise it is NewTask.
func NewInlineTask(lang, code string, opts ...Option) (*Task, error) {
	return build(lang, nil, &code, opts)
}

func build(lang string, file, code *string, opts []Option) (*Task, error) {
	d := wire.Defaults
	b := &builder{
		env: envelope{
			Phlask:      wire.ProtocolVersion,
			Queue:       d.Queue,
			Lang:        lang,
			File:        file,
			Code:        code,
			Args:        []string{},
			Env:         map[string]string{},
			MaxAttempts: d.MaxAttempts,
			Backoff:     backoffJSON(d.Backoff),
			Priority:    d.Priority,
			Meta:        map[string]string{},
		},
		clock: time.Now,
	}
	for _, opt := range opts {
		opt(b)
	}
	now := b.clock().UTC().Truncate(time.Millisecond)
	env := &b.env
	if env.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("phlask: generating a task id: %w", err)
		}
		env.ID = id.String()
	}
	notBefore := b.notBefore
	if b.delay != nil {
		switch {
		case *b.delay < 0:
			b.fail("$.delay", "must be >= 0, got %v", *b.delay)
		case !b.notBefore.IsZero():
			b.fail("$.delay", "give WithDelay or WithNotBefore, not both")
		default:
			notBefore = now.Add(b.delay.Round(time.Millisecond))
		}
	}
	if !notBefore.IsZero() {
		env.NotBefore = FormatTimestamp(notBefore)
	}
	if !b.expiresAt.IsZero() {
		env.ExpiresAt = FormatTimestamp(b.expiresAt)
	}
	env.CreatedAt = FormatTimestamp(now)
	env.Producer = &producerJSON{SDK: SDKName, Version: Version, Host: hostname()}

	b.checkUTF8()
	body, err := marshal(env)
	if err != nil {
		return nil, &ValidationError{Errors: append(b.errs, FieldError{"$", "cannot encode as JSON: " + err.Error()})}
	}
	errs := append(b.errs, envelopeErrors(body)...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Path < errs[j].Path })
		return nil, &ValidationError{Errors: errs}
	}
	return &Task{
		id:        env.ID,
		queue:     env.Queue,
		priority:  env.Priority,
		notBefore: parsedOrZero(env.NotBefore),
		expiresAt: parsedOrZero(env.ExpiresAt),
		body:      body,
	}, nil
}

// checkUTF8 refuses strings that are not UTF-8: encoding/json would silently replace
// their bad bytes with U+FFFD, so the task would receive something else.
func (b *builder) checkUTF8() {
	e := &b.env
	check := func(path, s string) {
		if !utf8.ValidString(s) {
			b.fail(path, "is not valid UTF-8 text")
		}
	}
	check("$.id", e.ID)
	check("$.queue", e.Queue)
	check("$.lang", e.Lang)
	if e.File != nil {
		check("$.file", *e.File)
	}
	if e.Code != nil {
		check("$.code", *e.Code)
	}
	for i, a := range e.Args {
		check(fmt.Sprintf("$.args[%d]", i), a)
	}
	for k, v := range e.Env {
		check("$.env."+strings.ToValidUTF8(k, "\uFFFD"), k+v)
	}
	for k, v := range e.Meta {
		check("$.meta."+strings.ToValidUTF8(k, "\uFFFD"), k+v)
	}
}

// hostname is producer.host, read once; empty (and left out) when unknown.
var hostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
})

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // <, > and & stay as they are: they are valid JSON text
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseTimestamp reads an RFC 3339 timestamp of the envelope profile (spec/README.md 2.5),
// lower-case t and z included.
func ParseTimestamp(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, strings.ToUpper(s))
}

func parsedOrZero(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := ParseTimestamp(s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// TaskFromEnvelope wraps envelope JSON built elsewhere (another producer, a file) so it
// can be pushed unchanged: the bytes are validated, never re-encoded, so a signature over
// them stays valid. The error is a *ValidationError.
func TaskFromEnvelope(body []byte) (*Task, error) {
	if err := ValidateEnvelope(body); err != nil {
		return nil, err
	}
	var f struct {
		ID        string   `json:"id"`
		Queue     *string  `json:"queue"`
		Priority  *float64 `json:"priority"`
		NotBefore string   `json:"not_before"`
		ExpiresAt string   `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, &ValidationError{Errors: []FieldError{{"$", err.Error()}}}
	}
	t := &Task{
		id:        f.ID,
		queue:     wire.Defaults.Queue,
		priority:  wire.Defaults.Priority,
		notBefore: parsedOrZero(f.NotBefore),
		expiresAt: parsedOrZero(f.ExpiresAt),
		body:      append([]byte(nil), body...),
	}
	if f.Queue != nil {
		t.queue = *f.Queue
	}
	if f.Priority != nil {
		t.priority = int(*f.Priority)
	}
	return t, nil
}

// ID returns the task id.
func (t *Task) ID() string { return t.id }

// Queue returns the queue the task goes to.
func (t *Task) Queue() string { return t.queue }

// Priority returns the task's priority, 0-9.
func (t *Task) Priority() int { return t.priority }

// NotBefore returns when the task becomes ready, or the zero time when it is ready at once.
func (t *Task) NotBefore() time.Time { return t.notBefore }

// ExpiresAt returns when the task expires, or the zero time when it never does.
func (t *Task) ExpiresAt() time.Time { return t.expiresAt }

// Envelope returns a copy of the envelope's exact JSON bytes: what is stored, signed and
// delivered to the runner.
func (t *Task) Envelope() []byte { return append([]byte(nil), t.body...) }

// MarshalJSON returns the envelope bytes, so a Task embedded in other JSON appears as its
// envelope.
func (t *Task) MarshalJSON() ([]byte, error) {
	if t == nil || len(t.body) == 0 {
		return nil, errZeroTask
	}
	return t.Envelope(), nil
}

var errZeroTask = errors.New("phlask: empty Task; build tasks with NewTask or NewInlineTask")

// Validate checks the envelope bytes against spec/task.schema.json and the size limit.
// A task from NewTask, NewInlineTask or TaskFromEnvelope is always valid; a zero Task is
// not. It returns nil or a *ValidationError.
func (t *Task) Validate() error {
	if t == nil || len(t.body) == 0 {
		return &ValidationError{Errors: []FieldError{{"$", errZeroTask.Error()}}}
	}
	return ValidateEnvelope(t.body)
}
