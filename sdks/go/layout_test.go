package phlask_test

// What the SDK stores, read back with the drivers and checked against the layout of
// spec/backends/*.md.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	phlask "github.com/phlask/phlask/sdks/go"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestSQLiteLayout(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	q, err := phlask.Open(ctx, f.url, phlask.WithSigningKey(testKeyID, testSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	unsignedQ, err := phlask.Open(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer unsignedQ.Close()

	// Given a signed, scheduled task and an unsigned one ready at once
	notBefore := time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	expires := notBefore.Add(time.Hour)
	scheduled := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue), phlask.WithPriority(7),
		phlask.WithNotBefore(notBefore), phlask.WithExpiresAt(expires))
	ready := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue))
	before := float64(time.Now().UnixMilli())/1000 - 1
	if _, err := q.Push(ctx, scheduled); err != nil {
		t.Fatal(err)
	}
	if _, err := unsignedQ.Push(ctx, ready); err != nil {
		t.Fatal(err)
	}

	// When the rows are read back
	db, err := sql.Open("sqlite", strings.TrimPrefix(f.url, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type row struct {
		id, queue, state, bodyType string
		priority, attempts         int
		runAt                      float64
		expiresAt                  sql.NullFloat64
		body                       []byte
		signature, keyID           sql.NullString
	}
	read := func(id string) row {
		var r row
		err := db.QueryRow(`SELECT id, queue, state, typeof(body), priority, attempts, run_at, expires_at,
			body, signature, key_id FROM phlask_tasks WHERE id = ?`, id).Scan(&r.id, &r.queue, &r.state,
			&r.bodyType, &r.priority, &r.attempts, &r.runAt, &r.expiresAt, &r.body, &r.signature, &r.keyID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Then they hold the envelope's exact bytes as a blob and the scheduling copies
	s := read(scheduled.ID())
	if s.queue != f.queue || s.state != "queued" || s.priority != 7 || s.attempts != 0 || s.bodyType != "blob" {
		t.Errorf("row %+v", s)
	}
	if string(s.body) != string(scheduled.Envelope()) {
		t.Errorf("body %s, want %s", s.body, scheduled.Envelope())
	}
	if math.Abs(s.runAt-1893553445.678) > 1e-6 || !s.expiresAt.Valid || math.Abs(s.expiresAt.Float64-1893557045.678) > 1e-6 {
		t.Errorf("run_at %f expires_at %v", s.runAt, s.expiresAt)
	}
	if s.signature.String != phlask.Sign(scheduled.Envelope(), testSecret) || s.keyID.String != testKeyID {
		t.Errorf("signature %v key_id %v", s.signature, s.keyID)
	}
	r := read(ready.ID())
	after := float64(time.Now().UnixMilli())/1000 + 1
	if r.signature.Valid || r.keyID.Valid || r.expiresAt.Valid || r.priority != 0 {
		t.Errorf("unsigned row %+v", r)
	}
	if r.runAt < before || r.runAt > after {
		t.Errorf("run_at %f is not the enqueue time (%f-%f)", r.runAt, before, after)
	}
	// and the file is in WAL mode with schema version 1
	var mode string
	var version int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q %v", mode, err)
	}
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != 1 {
		t.Errorf("user_version %d %v", version, err)
	}
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "queue.db") // parents are created
	q, err := phlask.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 2"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = phlask.Open(context.Background(), "sqlite://"+path)
	if err == nil || !strings.Contains(err.Error(), "schema version 2") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v, want a schema version error naming the file", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, raw := range []string{"redis://127.0.0.1/0", "sqlite:///:memory:", "nonsense"} {
		_, err := phlask.Open(ctx, raw)
		var be *phlask.BackendError
		if !errors.Is(err, phlask.ErrConfig) || !errors.As(err, &be) || be.URL != raw || be.Op != "open" {
			t.Errorf("Open(%q) = %v, want ErrConfig in a BackendError naming the URL", raw, err)
		}
	}
	_, err := phlask.Open(ctx, "sqlite://"+t.TempDir()+"/q.db", phlask.WithSigningKey("bad key", "s"))
	if !errors.Is(err, phlask.ErrConfig) {
		t.Errorf("bad key id: %v", err)
	}
	_, err = phlask.Open(ctx, "sqlite://"+t.TempDir()+"/q.db", phlask.WithSigningKey("k1", ""))
	if !errors.Is(err, phlask.ErrConfig) {
		t.Errorf("empty secret: %v", err)
	}

	// A server that is not there: the driver's error is wrapped, the password is not shown
	for _, raw := range []string{"amqp://guest:s3cr3t@127.0.0.1:1/%2F?connect_timeout=1", "mongodb://user:s3cr3t@127.0.0.1:1/db?serverSelectionTimeoutMS=500"} {
		_, err := phlask.Open(ctx, raw)
		if err == nil {
			t.Errorf("Open(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("Open(%q) = %v: the URL must be named without its password", raw, err)
		}
		var opErr *net.OpError
		if strings.HasPrefix(raw, "amqp") && !errors.As(err, &opErr) {
			t.Errorf("Open(%q) = %v (%T), want the dial error wrapped", raw, err, errors.Unwrap(err))
		}
	}
}

func TestPushAfterClose(t *testing.T) {
	ctx := context.Background()
	q, err := phlask.Open(ctx, "sqlite://"+t.TempDir()+"/q.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = q.Push(ctx, mustTask(t, "shell", "a.sh"))
	if !errors.Is(err, phlask.ErrClosed) {
		t.Fatalf("Push after Close = %v", err)
	}
}

func TestPushRefusesInvalidTasks(t *testing.T) {
	ctx := context.Background()
	q, err := phlask.Open(ctx, "sqlite://"+t.TempDir()+"/q.db")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var zero phlask.Task
	good := mustTask(t, "shell", "a.sh")
	_, err = q.PushMany(ctx, []*phlask.Task{good, &zero})
	var verr *phlask.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "task 2 of 2") {
		t.Fatalf("PushMany = %v", err)
	}
	// nothing of the batch was stored
	if _, err := q.Push(ctx, good); err != nil {
		t.Fatalf("the valid task of the refused batch was stored: %v", err)
	}
}

func TestRabbitMQLayout(t *testing.T) {
	f := rabbitFixture(t)
	// the delay queue this test publishes to (an hour and a half minute ahead)
	const ttl = 3_600_000
	t.Cleanup(func() { rabbitDeleteQueues(t, f.url, f.queue, ttl) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := phlask.Open(ctx, f.url, phlask.WithSigningKey(testKeyID, testSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// Given a signed task of priority 7 ready now, and one due in an hour and a half minute
	ready := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue), phlask.WithPriority(7))
	due := time.Now().Add(time.Hour + 30*time.Second).Truncate(time.Millisecond)
	later := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue), phlask.WithNotBefore(due))
	before := time.Now().Add(-2 * time.Second)
	if _, err := q.PushMany(ctx, []*phlask.Task{ready, later}); err != nil {
		t.Fatal(err)
	}

	conn, ch := rabbitChannel(t, f.url)
	defer conn.Close()
	// Then the ready one is in the work queue with the properties of section 5
	work := "phlask." + f.queue
	d := rabbitGet(t, ch, work)
	if string(d.Body) != string(ready.Envelope()) || d.MessageId != ready.ID() || d.ContentType != "application/json" ||
		d.DeliveryMode != 2 || d.Priority != 7 || d.Timestamp.Before(before.Truncate(time.Second)) || d.Timestamp.After(time.Now()) {
		t.Errorf("work queue message: id %s type %s mode %d priority %d time %v body %s", d.MessageId, d.ContentType, d.DeliveryMode, d.Priority, d.Timestamp, d.Body)
	}
	if d.Headers["x-phlask-signature"] != phlask.Sign(ready.Envelope(), testSecret) || d.Headers["x-phlask-key-id"] != testKeyID {
		t.Errorf("headers %v", d.Headers)
	}
	if _, ok := d.Headers["x-phlask-not-before"]; ok {
		t.Errorf("a ready task carries x-phlask-not-before: %v", d.Headers)
	}
	// and the later one in the delay queue of its bucket, with its due time in ms
	delay := fmt.Sprintf("%s:delay:%d", work, ttl)
	d = rabbitGet(t, ch, delay)
	if string(d.Body) != string(later.Envelope()) || d.Headers["x-phlask-not-before"] != due.UnixMilli() {
		t.Errorf("delay queue message: %v %s", d.Headers, d.Body)
	}
	// and both queues have exactly the arguments of section 4 (RabbitMQ refuses a
	// declaration whose arguments differ from the queue's with 406, closing the channel)
	for name, args := range map[string]amqp.Table{
		work:  {"x-queue-type": "classic", "x-max-priority": int64(10)},
		delay: {"x-queue-type": "classic", "x-message-ttl": int64(ttl), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": work, "x-expires": int64(ttl + 600000)},
	} {
		if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
			t.Fatalf("queue %s was declared with other arguments: %v", name, err)
		}
	}
}

func TestMongoLayout(t *testing.T) {
	f := mongoFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := phlask.Open(ctx, f.url, phlask.WithSigningKey(testKeyID, testSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// Given a signed, scheduled task of priority 7
	notBefore := time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	task := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue), phlask.WithPriority(7),
		phlask.WithNotBefore(notBefore), phlask.WithExpiresAt(notBefore.Add(time.Hour)))
	before := time.Now().Add(-time.Second)
	if _, err := q.Push(ctx, task); err != nil {
		t.Fatal(err)
	}
	// When the same bytes are pushed again (a retry whose first reply was lost)
	if _, err := q.Push(ctx, task); err != nil {
		t.Fatalf("pushing the same bytes again: %v", err)
	}

	// Then there is one document, with the fields and BSON types of section 4
	docs := mongoFind(t, f.url, bson.D{{Key: "queue", Value: f.queue}})
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	doc := docs[0]
	str := func(key string) string { return doc.Lookup(key).StringValue() }
	if str("_id") != task.ID() || str("queue") != f.queue || str("state") != "queued" {
		t.Errorf("document %v", doc)
	}
	for key, want := range map[string]int64{"priority": 7, "gen": 0, "attempts": 0} {
		if v, ok := doc.Lookup(key).AsInt64OK(); !ok || v != want {
			t.Errorf("%s = %v, want the integer %d", key, doc.Lookup(key), want)
		}
	}
	if sub, data := doc.Lookup("body").Binary(); sub != 0 || string(data) != string(task.Envelope()) {
		t.Errorf("body is not the envelope's bytes as binary subtype 0: %v", doc.Lookup("body"))
	}
	if doc.Lookup("run_at").Time().UnixMilli() != notBefore.UnixMilli() ||
		doc.Lookup("expires_at").Time().UnixMilli() != notBefore.Add(time.Hour).UnixMilli() {
		t.Errorf("run_at %v expires_at %v", doc.Lookup("run_at"), doc.Lookup("expires_at"))
	}
	enq, upd := doc.Lookup("enqueued_at").Time(), doc.Lookup("updated_at").Time()
	if !enq.Equal(upd) || enq.Before(before) || enq.After(time.Now()) {
		t.Errorf("enqueued_at %v updated_at %v", enq, upd)
	}
	if _, ok := doc.Lookup("seq").ObjectIDOK(); !ok {
		t.Errorf("seq %v is not an ObjectId", doc.Lookup("seq"))
	}
	if str("signature") != phlask.Sign(task.Envelope(), testSecret) || str("key_id") != testKeyID {
		t.Errorf("signature %v key_id %v", doc.Lookup("signature"), doc.Lookup("key_id"))
	}
}

func TestRabbitMQRecoversFromRefusedDeclare(t *testing.T) {
	f := rabbitFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Given a work queue someone declared with other arguments
	conn, ch := rabbitChannel(t, f.url)
	defer conn.Close()
	work := "phlask." + f.queue
	if _, err := ch.QueueDeclare(work, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		t.Fatal(err)
	}
	q, err := phlask.Open(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// When a task is pushed, then the server's refusal comes back as the driver's error
	_, err = q.Push(ctx, mustTask(t, "shell", "a.sh", phlask.WithQueue(f.queue)))
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.PreconditionFailed || !strings.Contains(err.Error(), work) {
		t.Fatalf("Push = %v, want a 406 naming %s", err, work)
	}
	// and once the queue is fixed, the same Queue works again on a new channel
	if _, err := ch.QueueDelete(work, false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Push(ctx, mustTask(t, "shell", "a.sh", phlask.WithQueue(f.queue))); err != nil {
		t.Fatalf("Push after the queue was fixed: %v", err)
	}
	d := rabbitGet(t, ch, work)
	if d.ContentType != "application/json" {
		t.Errorf("message %+v", d.ContentType)
	}
}

func TestRabbitMQDeletedQueue(t *testing.T) {
	f := rabbitFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := phlask.Open(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Push(ctx, mustTask(t, "shell", "a.sh", phlask.WithQueue(f.queue))); err != nil {
		t.Fatal(err)
	}
	// Given the work queue deleted after this connection declared it
	conn, ch := rabbitChannel(t, f.url)
	defer conn.Close()
	work := "phlask." + f.queue
	if _, err := ch.QueueDelete(work, false, false, false); err != nil {
		t.Fatal(err)
	}
	// When a task is pushed, then the server's basic.return is reported (mandatory flag)
	lost := mustTask(t, "shell", "a.sh", phlask.WithQueue(f.queue))
	_, err = q.Push(ctx, lost)
	if err == nil || !strings.Contains(err.Error(), "could not be routed") || !strings.Contains(err.Error(), lost.ID()) {
		t.Fatalf("Push to a deleted queue = %v, want an unroutable error", err)
	}
	// and the next push declares the queue again
	again := mustTask(t, "shell", "a.sh", phlask.WithQueue(f.queue))
	if _, err := q.Push(ctx, again); err != nil {
		t.Fatalf("Push after the queue was deleted: %v", err)
	}
	if d := rabbitGet(t, ch, work); d.MessageId != again.ID() {
		t.Fatalf("got %s, want %s", d.MessageId, again.ID())
	}
}
