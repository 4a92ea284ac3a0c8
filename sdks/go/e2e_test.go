package phlask_test

// End to end: this SDK enqueues signed tasks onto each real backend, a `phlask run`
// started here runs them, and the results the task scripts (tests/tasks/) wrote say that
// every argument, variable and input byte arrived unchanged.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	phlask "github.com/phlask/phlask/sdks/go"
)

// Arguments a shell would mangle, and text outside ASCII.
var trickyArgs = []string{
	"two words",
	`"double" and 'single' quotes`,
	"$(touch /tmp/phlask-sdk-go-pwned) `id` $HOME; | > *",
	"grüß dich, 日本語, emoji 🎉",
	"",
	"--flag=value",
}

const greeting = "héllo wörld $(not expanded) \"quoted\""

// input holds a number that a float64 would round: it must reach the task as written.
var input = json.RawMessage(`{"n":9007199254740993,"text":"ünïcödé \"q\"","list":[1,2.5,null,true]}`)

func TestEndToEnd(t *testing.T) {
	for _, b := range backends() {
		b := b
		t.Run(b.name, func(t *testing.T) {
			f := b.make(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// Given a queue that signs with the runner's key, and three tasks in three
			// languages with the same arguments, environment and input
			q, err := phlask.Open(ctx, f.url, phlask.WithSigningKey(testKeyID, testSecret))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			opts := []phlask.Option{
				phlask.WithQueue(f.queue),
				phlask.WithArgs(trickyArgs...),
				phlask.WithEnv(map[string]string{"GREETING": greeting}),
				phlask.WithInput(input),
				phlask.WithTimeout(time.Minute),
			}
			shell := mustTask(t, "shell", "report.sh", opts...)
			php := mustTask(t, "php", "report.php", opts...)
			python := mustTask(t, "python", "report.py", opts...)

			// and a task signed with a secret the runner does not hold
			other, err := phlask.Open(ctx, f.url, phlask.WithSigningKey(testKeyID, "another secret"))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			forged := mustTask(t, "python", "report.py", opts...)

			// When they are pushed (one alone, two as a batch) and a runner drains the queue
			if id, err := q.Push(ctx, shell); err != nil || id != shell.ID() {
				t.Fatalf("Push = %q, %v", id, err)
			}
			ids, err := q.PushMany(ctx, []*phlask.Task{php, python})
			if err != nil || !reflect.DeepEqual(ids, []string{php.ID(), python.ID()}) {
				t.Fatalf("PushMany = %v, %v", ids, err)
			}
			if _, err := other.Push(ctx, forged); err != nil {
				t.Fatal(err)
			}
			runRunner(t, f)

			// Then each task succeeded and received exactly what was sent
			for _, task := range []*phlask.Task{shell, php, python} {
				info := inspect(t, f, task.ID())
				if info.State != "succeeded" {
					t.Fatalf("task %s: state %q, want succeeded\n%s", task.ID(), info.State, info.Raw)
				}
				checkReport(t, task.ID(), info.Result.Result)
			}
			// and the forged one was refused before it ran
			info := inspect(t, f, forged.ID())
			if info.State != "dead" || info.Reason != "bad_signature" {
				t.Fatalf("forged task: state %q reason %q, want dead bad_signature\n%s", info.State, info.Reason, info.Raw)
			}
		})
	}
}

func mustTask(t *testing.T, lang, file string, opts ...phlask.Option) *phlask.Task {
	t.Helper()
	task, err := phlask.NewTask(lang, file, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// checkReport compares what a task script wrote with what the SDK sent.
func checkReport(t *testing.T, id string, raw json.RawMessage) {
	t.Helper()
	var r struct {
		Lang        string   `json:"lang"`
		Args        []string `json:"args"`
		Greeting    string   `json:"greeting"`
		TaskID      string   `json:"task_id"`
		Stdin       string   `json:"stdin"`
		ArgsHex     []string `json:"args_hex"`
		GreetingHex string   `json:"greeting_hex"`
		StdinHex    string   `json:"stdin_hex"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("task %s: result %s: %v", id, raw, err)
	}
	if r.Lang == "shell" { // the shell script writes bytes as hex
		r.Args = make([]string, len(r.ArgsHex))
		for i, h := range r.ArgsHex {
			r.Args[i] = unhex(t, h)
		}
		r.Greeting, r.Stdin = unhex(t, r.GreetingHex), unhex(t, r.StdinHex)
	}
	if !reflect.DeepEqual(r.Args, trickyArgs) {
		t.Errorf("task %s (%s): args %q, want %q", id, r.Lang, r.Args, trickyArgs)
	}
	if r.Greeting != greeting {
		t.Errorf("task %s (%s): GREETING %q, want %q", id, r.Lang, r.Greeting, greeting)
	}
	if r.Stdin != string(input) {
		t.Errorf("task %s (%s): stdin %q, want %q", id, r.Lang, r.Stdin, input)
	}
	if r.TaskID != id {
		t.Errorf("task %s (%s): PHLASK_TASK_ID %q", id, r.Lang, r.TaskID)
	}
}

func unhex(t *testing.T, s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return string(b)
}

func TestDuplicateIDs(t *testing.T) {
	for _, b := range backends() {
		b := b
		t.Run(b.name, func(t *testing.T) {
			f := b.make(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q, err := phlask.Open(ctx, f.url)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			id := "dup-" + randomSuffix(t)
			first := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue), phlask.WithID(id))

			// A batch that repeats an id is refused by every backend, before anything is stored
			_, err = q.PushMany(ctx, []*phlask.Task{first, first})
			checkDuplicate(t, err, id, f.url)

			if !f.unique {
				return
			}
			// Given a stored task, when its id is pushed again, then the backend refuses it
			if _, err := q.Push(ctx, first); err != nil {
				t.Fatal(err)
			}
			// (with other bytes: MongoDB takes the same bytes for a retry of the first push)
			again := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue), phlask.WithID(id), phlask.WithArgs("again"))
			_, err = q.Push(ctx, again)
			checkDuplicate(t, err, id, f.url)

			// and a batch holding it stores none of its tasks
			fresh := mustTask(t, "shell", "report.sh", phlask.WithQueue(f.queue))
			_, err = q.PushMany(ctx, []*phlask.Task{fresh, again})
			checkDuplicate(t, err, id, f.url)
			if f.atomic {
				if _, err := q.Push(ctx, fresh); err != nil {
					t.Fatalf("the first task of the refused batch was stored: %v", err)
				}
			}
		})
	}
}

func checkDuplicate(t *testing.T, err error, id, rawURL string) {
	t.Helper()
	if !errors.Is(err, phlask.ErrDuplicateID) {
		t.Fatalf("err = %v, want ErrDuplicateID", err)
	}
	var dup *phlask.DuplicateIDError
	if !errors.As(err, &dup) || dup.ID != id {
		t.Fatalf("err = %v, want a *DuplicateIDError for %q", err, id)
	}
	var be *phlask.BackendError
	if !errors.As(err, &be) || be.URL != redacted(rawURL) {
		t.Fatalf("err = %v, want a *BackendError naming %s", err, redacted(rawURL))
	}
}

func TestConcurrentPushes(t *testing.T) {
	for _, b := range backends() {
		b := b
		t.Run(b.name, func(t *testing.T) {
			f := b.make(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			q, err := phlask.Open(ctx, f.url, phlask.WithSigningKey(testKeyID, testSecret))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			// Given one queue shared by several goroutines, when each pushes tasks alone
			// and in batches, then every push succeeds and every task runs once
			const workers, each = 8, 3
			errs := make(chan error, workers)
			build := func() (*phlask.Task, error) {
				return phlask.NewTask("shell", "report.sh", phlask.WithQueue(f.queue), phlask.WithInput(input),
					phlask.WithArgs(trickyArgs...), phlask.WithEnv(map[string]string{"GREETING": greeting}))
			}
			for w := 0; w < workers; w++ {
				go func() {
					one, err := build()
					if err == nil {
						_, err = q.Push(ctx, one)
					}
					if err != nil {
						errs <- err
						return
					}
					var batch []*phlask.Task
					for i := 1; i < each; i++ {
						task, err := build()
						if err != nil {
							errs <- err
							return
						}
						batch = append(batch, task)
					}
					_, err = q.PushMany(ctx, batch)
					errs <- err
				}()
			}
			for w := 0; w < workers; w++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			runRunner(t, f)
			if n := countSucceeded(t, f); n != workers*each {
				t.Fatalf("%d tasks succeeded, want %d", n, workers*each)
			}
		})
	}
}
