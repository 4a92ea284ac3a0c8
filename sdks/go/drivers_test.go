package phlask_test

// Direct driver access for the tests: reaching the servers, cleaning up, and reading what
// the SDK stored, to check it against the backend documents.

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

func mongoConnect(ctx context.Context, rawURL string) (*mongo.Client, string, error) {
	cs, err := connstring.ParseAndValidate(rawURL)
	if err != nil {
		return nil, "", err
	}
	client, err := mongo.Connect(options.Client().ApplyURI(rawURL).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, "", err
	}
	return client, cs.Database, nil
}

func mongoPing(ctx context.Context, rawURL string) error {
	client, _, err := mongoConnect(ctx, rawURL)
	if err != nil {
		return err
	}
	defer client.Disconnect(ctx)
	return client.Ping(ctx, nil)
}

func mongoDrop(t *testing.T, rawURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, db, err := mongoConnect(ctx, rawURL)
	if err != nil {
		t.Errorf("dropping the test database: %v", err)
		return
	}
	defer client.Disconnect(ctx)
	if err := client.Database(db).Drop(ctx); err != nil {
		t.Errorf("dropping the test database %s: %v", db, err)
	}
}

func rabbitPing(rawURL string) error {
	conn, err := amqp.DialConfig(rawURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

// rabbitDeleteQueues deletes the work and dead queues of a phlask queue and the delay
// queues the tests publish to.
func rabbitDeleteQueues(t *testing.T, rawURL, queue string, delayTTLs ...int) {
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		t.Errorf("deleting test queues: %v", err)
		return
	}
	defer conn.Close()
	names := []string{"phlask." + queue, "phlask." + queue + ":dead"}
	for _, ttl := range delayTTLs {
		names = append(names, fmt.Sprintf("phlask.%s:delay:%d", queue, ttl))
	}
	for _, name := range names {
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("deleting test queues: %v", err)
			return
		}
		// A queue that was never declared is fine: the server closes the channel (404).
		_, _ = ch.QueueDelete(name, false, false, false)
		ch.Close()
	}
}

func rabbitChannel(t *testing.T, rawURL string) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return conn, ch
}

// rabbitGet takes the next message of a queue (acknowledged: the test owns the queue).
func rabbitGet(t *testing.T, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	d, ok, err := ch.Get(queue, true)
	if err != nil || !ok {
		t.Fatalf("basic.get %s: ok %v, %v", queue, ok, err)
	}
	return d
}

// mongoFind returns the task documents matching filter, as stored.
func mongoFind(t *testing.T, rawURL string, filter bson.D) []bson.Raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, db, err := mongoConnect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	cur, err := client.Database(db).Collection("phlask_tasks").Find(ctx, filter)
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	for cur.Next(ctx) {
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}
