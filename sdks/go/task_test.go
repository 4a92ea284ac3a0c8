package phlask_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	phlask "github.com/phlask/phlask/sdks/go"
)

var fixedNow = time.Date(2026, 11, 28, 2, 44, 3, 123456789, time.UTC)

func fixedClock() time.Time { return fixedNow }

func decode(t *testing.T, task *phlask.Task) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(task.Envelope(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fieldPaths returns the paths of a *ValidationError.
func fieldPaths(t *testing.T, err error) []string {
	t.Helper()
	var verr *phlask.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v (%T), want a *ValidationError", err, err)
	}
	var paths []string
	for _, fe := range verr.Errors {
		paths = append(paths, fe.Path)
	}
	return paths
}

func TestNewTaskWritesEveryDefault(t *testing.T) {
	// Given only a language and a file
	task, err := phlask.NewTask("php", "jobs/report.php", phlask.WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	env := decode(t, task)
	// Then every default is explicit, the id is a UUIDv7 and created_at the producer format
	for key, want := range map[string]any{
		"phlask": 1.0, "queue": "default", "lang": "php", "file": "jobs/report.php",
		"max_attempts": 1.0, "priority": 0.0, "created_at": "2026-11-28T02:44:03.123Z",
	} {
		if env[key] != want {
			t.Errorf("%s = %v, want %v", key, env[key], want)
		}
	}
	if args, ok := env["args"].([]any); !ok || len(args) != 0 {
		t.Errorf("args = %v, want []", env["args"])
	}
	for _, key := range []string{"env", "meta"} {
		if m, ok := env[key].(map[string]any); !ok || len(m) != 0 {
			t.Errorf("%s = %v, want {}", key, env[key])
		}
	}
	backoff, _ := json.Marshal(env["backoff"])
	if string(backoff) != `{"factor":2,"initial":1,"jitter":true,"max":300}` {
		t.Errorf("backoff = %s", backoff)
	}
	for _, absent := range []string{"input", "timeout", "not_before", "expires_at", "code"} {
		if _, ok := env[absent]; ok {
			t.Errorf("%s present: %v", absent, env[absent])
		}
	}
	uuidV7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuidV7.MatchString(task.ID()) || env["id"] != task.ID() {
		t.Errorf("id %q is not a lowercase UUIDv7", task.ID())
	}
	producer := env["producer"].(map[string]any)
	if producer["sdk"] != "phlask-go" || producer["version"] != phlask.Version {
		t.Errorf("producer = %v", producer)
	}
	// and the members come in the order of the spec's field table
	if !strings.HasPrefix(string(task.Envelope()), `{"phlask":1,"id":"`) {
		t.Errorf("envelope starts %.40s", task.Envelope())
	}
}

func TestGeneratedIDsAreUniqueAndOrdered(t *testing.T) {
	var prev string
	for i := 0; i < 1000; i++ {
		task, err := phlask.NewInlineTask("shell", "true")
		if err != nil {
			t.Fatal(err)
		}
		if task.ID() <= prev {
			t.Fatalf("id %s after %s", task.ID(), prev)
		}
		prev = task.ID()
	}
}

func TestInputNullIsNotNoInput(t *testing.T) {
	withNull, err := phlask.NewTask("shell", "a.sh", phlask.WithInput(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(withNull.Envelope()), `"input":null`) {
		t.Errorf("WithInput(nil): %s", withNull.Envelope())
	}
	without, err := phlask.NewTask("shell", "a.sh")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(without.Envelope()), `"input"`) {
		t.Errorf("no WithInput: %s", without.Envelope())
	}
}

func TestInputKeepsBytesAndText(t *testing.T) {
	task, err := phlask.NewTask("shell", "a.sh", phlask.WithInput(map[string]any{
		"html": "<b>&</b>", "big": json.Number("9007199254740993"), "raw": json.RawMessage(`[1, 2.50]`),
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := `"input":{"big":9007199254740993,"html":"<b>&</b>","raw":[1,2.50]}`
	if !strings.Contains(string(task.Envelope()), want) {
		t.Errorf("envelope %s does not hold %s", task.Envelope(), want)
	}
}

func TestOptions(t *testing.T) {
	bo := phlask.DefaultBackoff()
	bo.Initial, bo.Jitter = 250*time.Millisecond, false
	notBefore := time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	task, err := phlask.NewInlineTask("python", "print('hi')",
		phlask.WithID("report-2026-11"), phlask.WithQueue("reports.nightly"),
		phlask.WithArgs("a b", "ç"), phlask.WithEnv(map[string]string{"MONTH": "2026-11"}),
		phlask.WithTimeout(1500*time.Millisecond), phlask.WithMaxAttempts(5), phlask.WithBackoff(bo),
		phlask.WithPriority(9), phlask.WithNotBefore(notBefore),
		phlask.WithExpiresAt(notBefore.Add(24*time.Hour)), phlask.WithMeta(map[string]string{"": "any key"}),
		phlask.WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	env := decode(t, task)
	delete(env, "producer")
	got, _ := json.Marshal(env)
	want := `{"args":["a b","ç"],"backoff":{"factor":2,"initial":0.25,"jitter":false,"max":300},` +
		`"code":"print('hi')","created_at":"2026-11-28T02:44:03.123Z","env":{"MONTH":"2026-11"},` +
		`"expires_at":"2026-11-29T09:00:00.000Z","id":"report-2026-11","lang":"python","max_attempts":5,` +
		`"meta":{"":"any key"},"not_before":"2026-11-28T09:00:00.000Z","phlask":1,"priority":9,` +
		`"queue":"reports.nightly","timeout":1.5}`
	if string(got) != want {
		t.Errorf("envelope\n  %s\nwant\n  %s", got, want)
	}
	if task.Queue() != "reports.nightly" || task.Priority() != 9 || !task.NotBefore().Equal(notBefore) ||
		!task.ExpiresAt().Equal(notBefore.Add(24*time.Hour)) {
		t.Errorf("accessors: %s %d %v %v", task.Queue(), task.Priority(), task.NotBefore(), task.ExpiresAt())
	}
}

func TestDelay(t *testing.T) {
	task, err := phlask.NewTask("shell", "a.sh", phlask.WithClock(fixedClock), phlask.WithDelay(1005*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// created_at is truncated to the millisecond and not_before follows from it
	if nb := decode(t, task)["not_before"]; nb != "2026-11-28T02:44:04.128Z" {
		t.Errorf("not_before = %v", nb)
	}
	_, err = phlask.NewTask("shell", "a.sh", phlask.WithDelay(-time.Second))
	if paths := fieldPaths(t, err); len(paths) != 1 || paths[0] != "$.delay" {
		t.Errorf("negative delay: %v", err)
	}
	_, err = phlask.NewTask("shell", "a.sh", phlask.WithDelay(time.Second), phlask.WithNotBefore(fixedNow))
	if paths := fieldPaths(t, err); len(paths) != 1 || paths[0] != "$.delay" {
		t.Errorf("delay and not_before: %v", err)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	// Given several bad options, when the task is built, then each bad field is named
	_, err := phlask.NewTask("Shell", "", phlask.WithPriority(10), phlask.WithMaxAttempts(0),
		phlask.WithArgs("ok", "bad\xff"), phlask.WithEnv(map[string]string{"1BAD": "x"}),
		phlask.WithTimeout(0), phlask.WithInput(make(chan int)))
	want := []string{"$.args[1]", "$.env.1BAD", "$.file", "$.input", "$.lang", "$.max_attempts", "$.priority", "$.timeout"}
	got := fieldPaths(t, err)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("paths %v, want %v\n%v", got, want, err)
	}
	if !strings.Contains(err.Error(), "$.priority: must be <= 9, got 10") {
		t.Errorf("message: %v", err)
	}
}

func TestEnvelopeSizeLimit(t *testing.T) {
	_, err := phlask.NewTask("shell", "a.sh", phlask.WithInput(strings.Repeat("x", 1<<20)))
	if paths := fieldPaths(t, err); len(paths) != 1 || paths[0] != "$" || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("err = %v", err)
	}
}

func TestMarshalJSONIsTheEnvelope(t *testing.T) {
	task, err := phlask.NewTask("shell", "a.sh", phlask.WithID("t-1"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(map[string]*phlask.Task{"task": task})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"task":`+string(task.Envelope())+`}` {
		t.Errorf("json.Marshal = %s", out)
	}
	var zero phlask.Task
	if err := zero.Validate(); err == nil {
		t.Error("a zero Task validated")
	}
	if _, err := json.Marshal(&zero); err == nil {
		t.Error("a zero Task marshalled")
	}
}

func TestTaskFromEnvelopeKeepsBytes(t *testing.T) {
	body := []byte("{\"phlask\":1.0, \"id\":\"greet-7\",\"lang\":\"node\",\"file\":\"jobs/greet.js\",\"priority\":5.0,\n" +
		"\"args\":[\"Zo\\u00eb\"],\"created_at\":\"2026-11-28t02:44:03.123z\",\"not_before\":\"2026-11-28T03:00:00+01:00\"}\n")
	task, err := phlask.TaskFromEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(task.Envelope()) != string(body) || task.ID() != "greet-7" || task.Queue() != "default" || task.Priority() != 5 {
		t.Errorf("task %q %q %d %s", task.ID(), task.Queue(), task.Priority(), task.Envelope())
	}
	if !task.NotBefore().Equal(time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("not_before = %v", task.NotBefore())
	}
}
