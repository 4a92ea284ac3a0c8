package phlask_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	phlask "github.com/phlask/phlask/sdks/go"
)

// Build a task and enqueue it onto a SQLite file shared with the runners of this host.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "phlask-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	q, err := phlask.Open(ctx, "sqlite://"+filepath.Join(dir, "queue.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	task, err := phlask.NewTask("php", "jobs/report.php",
		phlask.WithID("report-2026-11"),
		phlask.WithArgs("2026-11"),
		phlask.WithInput(map[string]any{"user": 42}),
		phlask.WithMaxAttempts(3),
	)
	if err != nil {
		log.Fatal(err)
	}
	id, err := q.Push(ctx, task)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued", id)

	// The same id again is refused.
	_, err = q.Push(ctx, task)
	fmt.Println(errors.Is(err, phlask.ErrDuplicateID))
	// Output:
	// enqueued report-2026-11
	// true
}

// Every bad field is reported with its JSON path.
func ExampleNewTask_validation() {
	_, err := phlask.NewTask("php", "jobs/report.php", phlask.WithPriority(10), phlask.WithQueue("My Queue"))
	var verr *phlask.ValidationError
	if errors.As(err, &verr) {
		for _, fe := range verr.Errors {
			fmt.Println(fe.Path+":", fe.Message)
		}
	}
	// Output:
	// $.priority: must be <= 9, got 10
	// $.queue: "My Queue" must start with a-z or 0-9 and be at most 64 characters of a-z 0-9 . _ -
}

// Inline code, scheduled ten minutes ahead, with a custom retry policy.
func ExampleNewInlineTask() {
	backoff := phlask.DefaultBackoff()
	backoff.Initial = 5 * time.Second
	backoff.Jitter = false
	task, err := phlask.NewInlineTask("shell", `echo "hello $1"`,
		phlask.WithArgs("world"),
		phlask.WithDelay(10*time.Minute),
		phlask.WithMaxAttempts(4),
		phlask.WithBackoff(backoff),
		phlask.WithClock(func() time.Time { return time.Date(2026, 11, 28, 2, 44, 3, 123e6, time.UTC) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.NotBefore().Format(time.RFC3339Nano))
	// Output:
	// 2026-11-28T02:54:03.123Z
}

// Enqueue onto RabbitMQ, signing every envelope; runners started with
// --key k.2026-11=SECRET accept them.
func ExampleWithSigningKey() {
	ctx := context.Background()
	q, err := phlask.Open(ctx, "amqp://guest:guest@127.0.0.1:5672/%2F",
		phlask.WithSigningKey("k.2026-11", os.Getenv("PHLASK_SIGNING_SECRET")))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	task, err := phlask.NewTask("node", "jobs/greet.js", phlask.WithArgs("Zoë"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := q.Push(ctx, task); err != nil {
		log.Fatal(err)
	}
}

// Enqueue a batch onto MongoDB.
func ExampleQueue_PushMany() {
	ctx := context.Background()
	q, err := phlask.Open(ctx, "mongodb://127.0.0.1:27017/phlask")
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	var tasks []*phlask.Task
	for _, month := range []string{"2026-10", "2026-11"} {
		task, err := phlask.NewTask("python", "jobs/report.py", phlask.WithArgs(month))
		if err != nil {
			log.Fatal(err)
		}
		tasks = append(tasks, task)
	}
	ids, err := q.PushMany(ctx, tasks)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ids))
}

// The signature of the protocol's worked example (spec/README.md section 6).
func ExampleSign() {
	body := `{"phlask":1,"id":"greet-7","lang":"node","file":"jobs/greet.js","args":["Zoë"],"created_at":"2026-11-28T02:44:03.123Z"}`
	fmt.Println(phlask.Sign([]byte(body), "correct horse battery staple"))
	// Output:
	// 1a08ee4608e6ee8244e83b06952481133a09bdb08259fc6623d36474ced85532
}

func ExampleValidateEnvelope() {
	err := phlask.ValidateEnvelope([]byte(`{"phlask":1,"id":"t-1","lang":"shell","file":"jobs/hello.sh","created_at":"2026-11-28T02:44:03Z","timout":60}`))
	fmt.Println(err)
	// Output:
	// phlask: invalid task: $.timout: unknown field `timout`; did you mean `timeout`?
}
