package phlask

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// spec/backends/mongodb.md section 2.
const (
	mongoDefaultCollection = "phlask_tasks"
	mongoDuplicateKey      = 11000
	// mongoRetryFor bounds the retries of a transient error (section 11).
	mongoRetryFor = 60 * time.Second
)

// Server error codes of a primary that stepped down or a server shutting down: the
// write can be retried elsewhere or later (section 11).
var mongoTransientCodes = []int{
	6,     // HostUnreachable
	7,     // HostNotFound
	89,    // NetworkTimeout
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	9001,  // SocketException
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
}

type mongoBackend struct {
	client *mongo.Client
	tasks  *mongo.Collection
}

// mongoURL splits phlask's collection= option off a MongoDB URL, leaving a connection
// string for the driver.
func mongoURL(rawURL string) (driverURL, collection string, err error) {
	collection = mongoDefaultCollection
	base, query, hasQuery := strings.Cut(rawURL, "?")
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if q.Has("collection") {
			collection = q.Get("collection")
			if collection == "" {
				return "", "", fmt.Errorf("%w: collection= names no collection", ErrConfig)
			}
			q.Del("collection")
		}
		if enc := q.Encode(); enc != "" {
			base += "?" + enc
		}
	}
	return base, collection, nil
}

func openMongo(ctx context.Context, rawURL string) (backend, error) {
	driverURL, collection, err := mongoURL(rawURL)
	if err != nil {
		return nil, err
	}
	cs, err := connstring.ParseAndValidate(driverURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if cs.Database == "" {
		return nil, fmt.Errorf("%w: the URL names no database; write mongodb://host:27017/DATABASE", ErrConfig)
	}
	opts := options.Client().ApplyURI(driverURL).SetAppName(SDKName)
	if !cs.ServerSelectionTimeoutSet {
		opts.SetServerSelectionTimeout(30 * time.Second)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx, nil); err != nil {
		client.Disconnect(context.Background()) //nolint:errcheck // the ping error says more
		return nil, err
	}
	return &mongoBackend{client: client, tasks: client.Database(cs.Database).Collection(collection)}, nil
}

// document is the task document a producer inserts (section 6), fields in its order.
func mongoDocument(m message, now time.Time) bson.D {
	runAt := now
	if !m.task.notBefore.IsZero() {
		runAt = m.task.notBefore
	}
	var expiresAt any
	if !m.task.expiresAt.IsZero() {
		expiresAt = m.task.expiresAt
	}
	return bson.D{
		{Key: "_id", Value: m.task.id},
		{Key: "queue", Value: m.task.queue},
		{Key: "state", Value: "queued"},
		{Key: "priority", Value: int32(m.task.priority)},
		{Key: "run_at", Value: runAt},
		{Key: "expires_at", Value: expiresAt},
		{Key: "seq", Value: bson.NewObjectID()},
		{Key: "gen", Value: int32(0)},
		{Key: "attempts", Value: int32(0)},
		{Key: "body", Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: m.body}},
		{Key: "signature", Value: nullable(m.signature)},
		{Key: "key_id", Value: nullable(m.keyID)},
		{Key: "enqueued_at", Value: now},
		{Key: "updated_at", Value: now},
	}
}

// enqueue inserts one document per task (section 6): insertOne for one, an ordered
// insertMany for a batch, which stops at the first error with the documents before it
// stored. A duplicate id whose stored body is these same bytes is an earlier try of this
// insert and counts as enqueued; other duplicates are a *DuplicateIDError. Transient
// errors are retried with the same documents.
func (b *mongoBackend) enqueue(ctx context.Context, msgs []message) error {
	now := time.Now()
	docs := make([]any, len(msgs))
	for i, m := range msgs {
		docs[i] = mongoDocument(m, now)
	}
	delay, deadline := 100*time.Millisecond, time.Now().Add(mongoRetryFor)
	for start := 0; start < len(docs); {
		failed, err := b.insert(ctx, docs[start:])
		if err == nil {
			return nil
		}
		switch {
		case failed >= 0 && isDuplicateKey(err):
			m := msgs[start+failed]
			same, readErr := b.storedBodyEquals(ctx, m)
			if readErr != nil {
				return fmt.Errorf("task %s: %w (reading the stored task: %v)", m.task.id, err, readErr)
			}
			if !same {
				return &DuplicateIDError{ID: m.task.id, Err: err}
			}
			start += failed + 1
		case mongoTransient(err) && ctx.Err() == nil && time.Now().Add(delay).Before(deadline):
			// Documents stored before the error come back as duplicates of themselves.
			select {
			case <-ctx.Done():
				return err
			case <-time.After(delay):
			}
			delay = min(2*delay, 5*time.Second)
		default:
			return err
		}
	}
	return nil
}

// insert stores docs in order; on error it returns the index of the document that
// failed (-1 when unknown).
func (b *mongoBackend) insert(ctx context.Context, docs []any) (int, error) {
	if len(docs) == 1 {
		_, err := b.tasks.InsertOne(ctx, docs[0])
		if err != nil {
			return 0, err
		}
		return 0, nil
	}
	_, err := b.tasks.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
		return bwe.WriteErrors[0].Index, err
	}
	return -1, err
}

func isDuplicateKey(err error) bool {
	var we mongo.WriteException
	if errors.As(err, &we) {
		for _, e := range we.WriteErrors {
			if e.Code == mongoDuplicateKey {
				return true
			}
		}
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
		return bwe.WriteErrors[0].Code == mongoDuplicateKey
	}
	return false
}

func (b *mongoBackend) storedBodyEquals(ctx context.Context, m message) (bool, error) {
	var stored struct {
		Body bson.RawValue `bson:"body"`
	}
	err := b.tasks.FindOne(ctx, bson.D{{Key: "_id", Value: m.task.id}},
		options.FindOne().SetProjection(bson.D{{Key: "body", Value: 1}})).Decode(&stored)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil // deleted meanwhile: still not this insert
	}
	if err != nil {
		return false, err
	}
	// A runner accepts a string body too; compare its bytes either way.
	if _, data, ok := stored.Body.BinaryOK(); ok {
		return bytes.Equal(data, m.body), nil
	}
	if s, ok := stored.Body.StringValueOK(); ok {
		return s == string(m.body), nil
	}
	return false, nil
}

func mongoTransient(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &topology.ServerSelectionError{}) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		if se.HasErrorLabel("RetryableWriteError") {
			return true
		}
		for _, code := range mongoTransientCodes {
			if se.HasErrorCode(code) {
				return true
			}
		}
	}
	return false
}

func (b *mongoBackend) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return b.client.Disconnect(ctx)
}
