package phlask_test

// Backend fixtures for the contract and end-to-end tests: a fresh SQLite file, a fresh
// MongoDB database and fresh RabbitMQ queue names for every test, removed afterwards, so
// that tests of other SDKs on the same servers never see ours.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	testKeyID  = "k.sdk-go"
	testSecret = "correct horse battery staple"
)

func randomSuffix(t testing.TB) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func repoRoot(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("PHLASK_REPO_ROOT"); dir != "" {
		return dir
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// unavailable skips the test on a laptop without the service, and fails it in CI.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (a failure when CI=true)", args...)
}

// fixture is one backend, ready for a test.
type fixture struct {
	name string
	url  string
	// runnerArgs go to `phlask run` and `phlask inspect` (RabbitMQ's result store).
	runnerArgs []string
	// queue is a phlask queue name private to this test.
	queue string
	// unique reports whether the backend refuses an id it already holds (RabbitMQ
	// cannot: it keeps no index of ids).
	unique bool
	// atomic reports whether a failed batch stores nothing.
	atomic bool
	// runnerOutput is what the last `phlask run` printed.
	runnerOutput string
}

// countSucceeded reads the last runner's summary line ("3 succeeded, 1 dead, ...").
func countSucceeded(t *testing.T, f *fixture) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(\d+) succeeded, (\d+) dead`).FindStringSubmatch(f.runnerOutput)
	if m == nil {
		t.Fatalf("no summary in the runner's output:\n%s", f.runnerOutput)
	}
	if m[2] != "0" {
		t.Errorf("%s tasks dead:\n%s", m[2], f.runnerOutput)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

type fixtureFactory struct {
	name string
	make func(t *testing.T) *fixture
}

func backends() []fixtureFactory {
	return []fixtureFactory{
		{"sqlite", sqliteFixture},
		{"mongodb", mongoFixture},
		{"rabbitmq", rabbitFixture},
	}
}

func sqliteFixture(t *testing.T) *fixture {
	path := filepath.Join(t.TempDir(), "queue.db")
	return &fixture{name: "sqlite", url: "sqlite://" + path, queue: "sdk-go-" + randomSuffix(t),
		unique: true, atomic: true}
}

func mongoFixture(t *testing.T) *fixture {
	base := os.Getenv("MONGODB_URL")
	if base == "" {
		base = "mongodb://127.0.0.1:27017/phlask_test"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("MONGODB_URL: %v", err)
	}
	u.Path = "/phlask_sdk_go_" + randomSuffix(t)
	// An ordered insertMany keeps the documents before a failed one (mongodb.md section 6).
	f := &fixture{name: "mongodb", url: u.String(), queue: "sdk-go-" + randomSuffix(t), unique: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mongoPing(ctx, f.url); err != nil {
		unavailable(t, "MongoDB at %s: %v", base, err)
	}
	t.Cleanup(func() { mongoDrop(t, f.url) })
	return f
}

func rabbitFixture(t *testing.T) *fixture {
	base := os.Getenv("AMQP_URL")
	if base == "" {
		base = "amqp://guest:guest@127.0.0.1:5672/%2F"
	}
	f := &fixture{name: "rabbitmq", url: base, queue: "sdk-go-" + randomSuffix(t)}
	if err := rabbitPing(base); err != nil {
		unavailable(t, "RabbitMQ at %s: %v", redacted(base), err)
	}
	results := filepath.Join(t.TempDir(), "results.db")
	f.runnerArgs = []string{"--results", "sqlite://" + results}
	t.Cleanup(func() { rabbitDeleteQueues(t, base, f.queue) })
	return f
}

func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparseable URL)"
}

// --- the Python runner ---------------------------------------------------------------

func phlaskBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PHLASK_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), ".venv", "bin", "phlask")
	}
	if _, err := os.Stat(bin); err != nil {
		unavailable(t, "phlask runner CLI %s: %v (run scripts/setup)", bin, err)
	}
	return bin
}

func tasksDir(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("tests", "tasks"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// runRunner drains the fixture's queue with `phlask run`, accepting envelopes signed with
// the test key only.
func runRunner(t *testing.T, f *fixture) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"run", "--broker", f.url, "--root", tasksDir(t), "--queue", f.queue,
		"--wait", "20", "--config", "/dev/null", "--key", testKeyID + "=" + testSecret}, f.runnerArgs...)
	cmd := exec.CommandContext(ctx, phlaskBin(t), args...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("phlask run: %v\n%s", err, out.String())
	}
	f.runnerOutput = out.String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("phlask run:\n%s", out.String())
		}
	})
}

// inspection is what `phlask inspect --json` says about a task.
type inspection struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	Result struct {
		State  string          `json:"state"`
		Reason *string         `json:"reason"`
		Error  *string         `json:"error"`
		Result json.RawMessage `json:"result"`
	} `json:"result"`
	Raw json.RawMessage `json:"-"`
}

func inspect(t *testing.T, f *fixture, id string) inspection {
	t.Helper()
	args := append([]string{"inspect", id, "--broker", f.url, "--json", "--config", "/dev/null"}, f.runnerArgs...)
	cmd := exec.Command(phlaskBin(t), args...)
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("phlask inspect %s: %v\n%s", id, err, stderr.String())
	}
	var info inspection
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("phlask inspect %s: %v\n%s", id, err, out)
	}
	info.Raw = out
	if strings.TrimSpace(string(out)) == "" {
		t.Fatalf("phlask inspect %s printed nothing", id)
	}
	return info
}
