package phlask

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Names, arguments and headers of spec/backends/rabbitmq.md (section 13 holds them as
// data; TestRabbitMQConstantsMatchSpec compares these with it).
const (
	rabbitDefaultPrefix    = "phlask."
	rabbitContentType      = "application/json"
	rabbitDeliveryMode     = amqp.Persistent // 2
	rabbitMaxPriority      = 10
	rabbitMaxDelayMS       = 86_400_000
	rabbitDelayExpiresMore = 600_000

	headerSignature = "x-phlask-signature"
	headerKeyID     = "x-phlask-key-id"
	headerNotBefore = "x-phlask-not-before"
)

// rabbitConfirmRound bounds the messages in flight between two waits for confirms, and
// so the returns (unroutable messages) that can arrive before this side reads them.
const rabbitConfirmRound = 1000

var rabbitPrefixRegex = regexp.MustCompile(`^[A-Za-z0-9._:-]{0,100}$`)

func rabbitWorkArgs() amqp.Table {
	return amqp.Table{"x-queue-type": "classic", "x-max-priority": int32(rabbitMaxPriority)}
}

func rabbitDelayArgs(work string, ttl int64) amqp.Table {
	return amqp.Table{
		"x-queue-type":              "classic",
		"x-message-ttl":             ttl,
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": work,
		"x-expires":                 ttl + rabbitDelayExpiresMore,
	}
}

// rabbitBucket is the delay queue TTL for a delay of d ms (section 7.1): d rounded down
// to two significant digits, at most one day. Never longer than d, so a task is never
// early; the runner sends one that arrives early through another hop.
func rabbitBucket(d int64) int64 {
	if d < 1 {
		d = 1
	}
	if d >= 100 {
		scale := int64(1)
		for d/scale >= 100 {
			scale *= 10
		}
		d = d / scale * scale
	}
	return min(d, rabbitMaxDelayMS)
}

type rabbitBackend struct {
	url     string // without phlask's own query options
	prefix  string
	timeout time.Duration

	mu       sync.Mutex // one batch at a time: confirms and returns are per channel
	conn     *amqp.Connection
	ch       *amqp.Channel
	returns  chan amqp.Return
	declared map[string]bool // work queues declared on conn
}

func openRabbit(ctx context.Context, rawURL string) (backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	q := u.Query()
	b := &rabbitBackend{prefix: rabbitDefaultPrefix, timeout: 15 * time.Second}
	if q.Has("prefix") {
		b.prefix = q.Get("prefix")
		if !rabbitPrefixRegex.MatchString(b.prefix) {
			return nil, fmt.Errorf("%w: prefix %q must be letters, digits and . _ : -", ErrConfig, b.prefix)
		}
	}
	if q.Has("connect_timeout") {
		secs, err := strconv.ParseFloat(q.Get("connect_timeout"), 64)
		if err != nil || secs <= 0 {
			return nil, fmt.Errorf("%w: connect_timeout %q must be a number of seconds > 0", ErrConfig, q.Get("connect_timeout"))
		}
		b.timeout = time.Duration(secs * float64(time.Second))
	}
	// phlask's own options (section 2) are not the client library's.
	for _, k := range []string{"prefix", "connect_timeout", "queues"} {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	b.url = u.String()
	if _, err := amqp.ParseURI(b.url); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := b.connect(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// connect opens the connection and a channel in confirm mode (section 6 step 1). It
// keeps trying to reach the server for connect_timeout (section 2), with backoff; a
// server that answers and refuses (bad credentials, no such vhost) fails at once.
func (b *rabbitBackend) connect(ctx context.Context) error {
	deadline := time.Now().Add(b.timeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	dialer := &net.Dialer{}
	config := amqp.Config{
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the AMQP handshake; the client clears it once connected.
			return c, c.SetDeadline(deadline)
		},
		Properties: amqp.Table{"product": SDKName, "version": Version},
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		conn, err := amqp.DialConfig(b.url, config)
		if err == nil {
			b.conn, b.declared = conn, map[string]bool{}
			return b.openChannel()
		}
		var netErr net.Error
		if !errors.As(err, &netErr) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-dctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func (b *rabbitBackend) openChannel() error {
	ch, err := b.conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return err
	}
	b.ch = ch
	b.returns = ch.NotifyReturn(make(chan amqp.Return, rabbitConfirmRound))
	return nil
}

// ready reopens what a broken connection or a channel error closed.
func (b *rabbitBackend) ready(ctx context.Context) error {
	if b.conn == nil || b.conn.IsClosed() {
		return b.connect(ctx)
	}
	if b.ch == nil || b.ch.IsClosed() {
		return b.openChannel()
	}
	return nil
}

type rabbitPublish struct {
	msg    message
	target string
	due    int64 // x-phlask-not-before, 0 for the work queue
}

// enqueue publishes every message with publisher confirms (section 6): the work queue of
// each phlask queue is declared once per connection, each delay queue before every batch
// that publishes to it; a batch succeeds when every message is acknowledged. There is no
// rollback: after an error some messages may be stored.
func (b *rabbitBackend) enqueue(ctx context.Context, msgs []message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.ready(ctx); err != nil {
		return err
	}
	err := b.publish(ctx, msgs)
	if err != nil {
		// A declare refused with 406 has closed the channel already; any other failure
		// leaves confirms unaccounted for, or a queue was deleted under a cached
		// declaration. Start the next batch on a fresh channel, declaring again.
		if b.ch != nil {
			b.ch.Close()
			b.ch = nil
		}
		b.declared = map[string]bool{}
	}
	return err
}

func (b *rabbitBackend) publish(ctx context.Context, msgs []message) error {
	now := time.Now().UnixMilli()
	plan := make([]rabbitPublish, len(msgs))
	delays := map[string]amqp.Table{}
	for i, m := range msgs {
		work := b.prefix + m.task.queue
		if !b.declared[work] {
			if _, err := b.ch.QueueDeclare(work, true, false, false, false, rabbitWorkArgs()); err != nil {
				return fmt.Errorf("declaring queue %s: %w", work, err)
			}
			b.declared[work] = true
		}
		p := rabbitPublish{msg: m, target: work}
		if nb := m.task.notBefore; !nb.IsZero() {
			if due := (nb.UnixNano() + 500_000) / 1_000_000; due > now {
				ttl := rabbitBucket(due - now)
				p.target = fmt.Sprintf("%s:delay:%d", work, ttl)
				p.due = due
				delays[p.target] = rabbitDelayArgs(work, ttl)
			}
		}
		plan[i] = p
	}
	for name, args := range delays {
		if _, err := b.ch.QueueDeclare(name, true, false, false, false, args); err != nil {
			return fmt.Errorf("declaring queue %s: %w", name, err)
		}
	}
	stamp := time.Unix(now/1000, 0)
	for start := 0; start < len(plan); start += rabbitConfirmRound {
		round := plan[start:min(start+rabbitConfirmRound, len(plan))]
		confirms := make([]*amqp.DeferredConfirmation, len(round))
		for i, p := range round {
			headers := amqp.Table{}
			if p.msg.signature != "" {
				headers[headerSignature] = p.msg.signature
				headers[headerKeyID] = p.msg.keyID
			}
			if p.due != 0 {
				headers[headerNotBefore] = p.due
			}
			dc, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, "", p.target, true, false, amqp.Publishing{
				Headers:      headers,
				ContentType:  rabbitContentType,
				DeliveryMode: rabbitDeliveryMode,
				Priority:     uint8(p.msg.task.priority),
				MessageId:    p.msg.task.id,
				Timestamp:    stamp,
				Body:         p.msg.body,
			})
			if err != nil {
				return fmt.Errorf("publishing task %s to %s: %w", p.msg.task.id, p.target, err)
			}
			confirms[i] = dc
		}
		for i, dc := range confirms {
			acked, err := dc.WaitContext(ctx)
			if err != nil {
				return fmt.Errorf("waiting for RabbitMQ to confirm task %s: %w", round[i].msg.task.id, err)
			}
			if !acked {
				return fmt.Errorf("RabbitMQ refused task %s (basic.nack): it was not enqueued", round[i].msg.task.id)
			}
		}
		// The server sends basic.return before the ack of the same message, and the
		// client queues it before handling the ack, so every return of this round is here.
		select {
		case r := <-b.returns:
			return fmt.Errorf("task %s could not be routed to %s (%d %s): it was not enqueued; its queue is missing",
				r.MessageId, r.RoutingKey, r.ReplyCode, r.ReplyText)
		default:
		}
	}
	return nil
}

func (b *rabbitBackend) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn, b.ch = nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
