package phlask

import (
	"context"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestRabbitMQReconnects(t *testing.T) {
	url := os.Getenv("AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/%2F"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := openRabbit(ctx, url)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("RabbitMQ: %v (a failure when CI=true)", err)
	}
	rb := b.(*rabbitBackend)
	defer rb.close()
	queue := "sdk-go-reconnect-" + time.Now().Format("150405.000000")
	defer func() {
		conn, err := amqp.Dial(url)
		if err == nil {
			if ch, err := conn.Channel(); err == nil {
				ch.QueueDelete(rabbitDefaultPrefix+queue, false, false, false) //nolint:errcheck
			}
			conn.Close()
		}
	}()
	push := func() error {
		task, err := NewTask("shell", "a.sh", WithQueue(queue))
		if err != nil {
			t.Fatal(err)
		}
		return rb.enqueue(ctx, []message{{task: task, body: task.body}})
	}
	if err := push(); err != nil {
		t.Fatal(err)
	}
	// Given a connection that broke between two pushes, then the next push reconnects
	rb.conn.Close()
	if err := push(); err != nil {
		t.Fatalf("push after the connection broke: %v", err)
	}
}
