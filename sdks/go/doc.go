// Package phlask is the Go producer SDK of phlask, a polyglot task runner: it builds task
// envelopes, validates them against the protocol's JSON Schema, signs them, and enqueues
// them onto a SQLite file, a MongoDB database or RabbitMQ, where Python runner hosts
// (`phlask run`) claim each task and run it as its own OS process.
//
// The protocol is spec/README.md in the phlask repository; each backend's storage layout
// is spec/backends/<backend>.md. This package is thin: build, validate, sign, enqueue.
//
// # Building tasks
//
// NewTask names a script on the runner host and the adapter that runs it; NewInlineTask
// carries the source itself (runners refuse inline code unless allowed). Options set the
// other fields; every default of the protocol is written into the envelope explicitly:
//
//	task, err := phlask.NewTask("php", "jobs/report.php",
//		phlask.WithArgs("2026-11", "--dry-run"),
//		phlask.WithEnv(map[string]string{"REPORT_MONTH": "2026-11"}),
//		phlask.WithInput(map[string]any{"user": 42}),
//		phlask.WithTimeout(10*time.Minute),
//		phlask.WithMaxAttempts(5),
//		phlask.WithQueue("reports"),
//	)
//
// The task gets a UUIDv7 id unless WithID gives one, and created_at is the build time
// (WithClock replaces the clock in tests). Building validates the envelope: a bad option
// gives a *ValidationError that lists every problem with its JSON path, such as
// "$.priority: must be <= 9, got 10".
//
// A task is immutable. Its bytes (Task.Envelope, also what json.Marshal writes for it)
// are exactly what is stored, signed and delivered.
//
// # Enqueueing
//
// Open connects to a backend by URL and returns a Queue:
//
//	q, err := phlask.Open(ctx, "sqlite:///var/lib/phlask/queue.db")
//	q, err := phlask.Open(ctx, "mongodb://127.0.0.1:27017/phlask")
//	q, err := phlask.Open(ctx, "amqp://guest:guest@127.0.0.1:5672/%2F")
//
// Push stores one task and PushMany a batch; both validate every task first and return
// the ids. A Queue is safe for concurrent use; Close it when done.
//
// # Signing
//
// WithSigningKey makes the queue sign every envelope with HMAC-SHA256; the signature and
// key id travel beside the envelope. Runners configured with a keyring run only tasks
// signed with a key they hold:
//
//	q, err := phlask.Open(ctx, url, phlask.WithSigningKey("k.2026-11", secret))
//
// # Errors
//
// Building and pushing invalid tasks give a *ValidationError. Backend failures are
// *BackendError values that name the URL (without its password) and wrap the cause, so
// errors.Is and errors.As reach the driver's own errors. errors.Is(err, ErrDuplicateID)
// tells a task id the backend already holds; errors.Is(err, ErrConfig) a URL or option
// Open cannot use.
package phlask
