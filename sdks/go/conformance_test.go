package phlask

// The shared conformance vectors (conformance/vectors/), read in place: never copied into
// this module. Each case is its own subtest named "<file stem>: <description>".

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

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

func vectorsDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("PHLASK_CONFORMANCE_DIR"); dir != "" {
		return filepath.Join(dir, "vectors")
	}
	return filepath.Join(repoRoot(t), "conformance", "vectors")
}

func vectorFiles(t *testing.T, sub string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorsDir(t), sub, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files in %s (err %v)", filepath.Join(vectorsDir(t), sub), err)
	}
	return files
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func stem(path string) string { return strings.TrimSuffix(filepath.Base(path), ".json") }

// hasPathPrefix reports whether some error's path starts with want, the vectors' rule.
func hasPathPrefix(err error, want string) bool {
	verr, ok := err.(*ValidationError)
	if !ok {
		return false
	}
	for _, fe := range verr.Errors {
		if strings.HasPrefix(fe.Path, want) {
			return true
		}
	}
	return false
}

func TestValidationVectors(t *testing.T) {
	for _, file := range vectorFiles(t, "validation") {
		var groups []struct {
			Description string `json:"description"`
			Schema      string `json:"schema"`
			Tests       []struct {
				Description string          `json:"description"`
				Data        json.RawMessage `json:"data"`
				Valid       bool            `json:"valid"`
				Path        string          `json:"path"`
			} `json:"tests"`
		}
		readJSON(t, file, &groups)
		for _, g := range groups {
			if g.Schema != "task.schema.json" {
				t.Fatalf("%s: group %q uses schema %q, which this SDK does not embed", file, g.Description, g.Schema)
			}
			for _, c := range g.Tests {
				c := c
				t.Run(stem(file)+": "+c.Description, func(t *testing.T) {
					// The raw text of data, as a decoder would receive it: 2.0 stays 2.0.
					err := ValidateEnvelope(c.Data)
					switch {
					case c.Valid && err != nil:
						t.Fatalf("valid envelope refused: %v", err)
					case !c.Valid && err == nil:
						t.Fatalf("invalid envelope accepted: %s", c.Data)
					case !c.Valid && c.Path != "" && !hasPathPrefix(err, c.Path):
						t.Fatalf("no error at %s: %v", c.Path, err)
					}
					// TaskFromEnvelope gives the same verdict.
					if _, err2 := TaskFromEnvelope(c.Data); (err2 == nil) != c.Valid {
						t.Fatalf("TaskFromEnvelope disagrees: %v", err2)
					}
				})
			}
		}
	}
}

// buildInput is a build vector's input: builder inputs under their spec field names.
type buildInput map[string]json.RawMessage

func (in buildInput) str(t *testing.T, key string) (string, bool) {
	raw, ok := in[key]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return s, true
}

func (in buildInput) num(t *testing.T, key string) (float64, bool) {
	raw, ok := in[key]
	if !ok {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return f, true
}

func secondsToDuration(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}

// Test-only options for the two vectors that break the one-of-file-or-code rule, which
// the public constructors make impossible to break.
func withCode(code string) Option { return func(b *builder) { b.env.Code = &code } }
func withoutFile() Option         { return func(b *builder) { b.env.File = nil } }

// buildFromVector maps a build vector's input onto the Go builder API.
func buildFromVector(t *testing.T, now time.Time, in buildInput) (*Task, error) {
	t.Helper()
	opts := []Option{WithClock(func() time.Time { return now })}
	known := map[string]bool{"lang": true, "file": true, "code": true}
	if v, ok := in.str(t, "id"); ok {
		opts = append(opts, WithID(v))
	}
	if v, ok := in.str(t, "queue"); ok {
		opts = append(opts, WithQueue(v))
	}
	if raw, ok := in["args"]; ok {
		var args []string
		if err := json.Unmarshal(raw, &args); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, WithArgs(args...))
	}
	if raw, ok := in["env"]; ok {
		var env map[string]string
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, WithEnv(env))
	}
	if raw, ok := in["meta"]; ok {
		var meta map[string]string
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, WithMeta(meta))
	}
	if raw, ok := in["input"]; ok {
		opts = append(opts, WithInput(raw))
	}
	if v, ok := in.num(t, "timeout"); ok {
		opts = append(opts, WithTimeout(secondsToDuration(v)))
	}
	if v, ok := in.num(t, "max_attempts"); ok {
		opts = append(opts, WithMaxAttempts(int(v)))
	}
	if v, ok := in.num(t, "priority"); ok {
		opts = append(opts, WithPriority(int(v)))
	}
	if v, ok := in.num(t, "delay"); ok {
		opts = append(opts, WithDelay(secondsToDuration(v)))
	}
	if raw, ok := in["backoff"]; ok {
		var given struct {
			Initial, Factor, Max *float64
			Jitter               *bool
		}
		if err := json.Unmarshal(raw, &given); err != nil {
			t.Fatal(err)
		}
		bo := DefaultBackoff()
		if given.Initial != nil {
			bo.Initial = secondsToDuration(*given.Initial)
		}
		if given.Factor != nil {
			bo.Factor = *given.Factor
		}
		if given.Max != nil {
			bo.Max = secondsToDuration(*given.Max)
		}
		if given.Jitter != nil {
			bo.Jitter = *given.Jitter
		}
		opts = append(opts, WithBackoff(bo))
	}
	for key, opt := range map[string]func(time.Time) Option{"not_before": WithNotBefore, "expires_at": WithExpiresAt} {
		if v, ok := in.str(t, key); ok {
			ts, err := ParseTimestamp(v)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			opts = append(opts, opt(ts))
		}
	}
	for _, k := range []string{"id", "queue", "args", "env", "meta", "input", "timeout", "max_attempts",
		"priority", "delay", "backoff", "not_before", "expires_at"} {
		known[k] = true
	}
	for k := range in {
		if !known[k] {
			t.Fatalf("build input %q has no mapping in this harness", k)
		}
	}
	lang, _ := in.str(t, "lang")
	file, hasFile := in.str(t, "file")
	code, hasCode := in.str(t, "code")
	switch {
	case hasFile && hasCode:
		return NewTask(lang, file, append(opts, withCode(code))...)
	case hasFile:
		return NewTask(lang, file, opts...)
	case hasCode:
		return NewInlineTask(lang, code, opts...)
	default:
		return NewTask(lang, "", append(opts, withoutFile())...)
	}
}

func TestBuildVectors(t *testing.T) {
	for _, file := range vectorFiles(t, "build") {
		var vectors []struct {
			Description string          `json:"description"`
			Now         string          `json:"now"`
			Input       buildInput      `json:"input"`
			Expected    json.RawMessage `json:"expected"`
			Error       string          `json:"error"`
		}
		readJSON(t, file, &vectors)
		for _, v := range vectors {
			v := v
			t.Run(stem(file)+": "+v.Description, func(t *testing.T) {
				now, err := ParseTimestamp(v.Now)
				if err != nil {
					t.Fatal(err)
				}
				task, err := buildFromVector(t, now, v.Input)
				if v.Error != "" {
					if err == nil {
						t.Fatalf("built %s, want an error at %s", task.Envelope(), v.Error)
					}
					if !hasPathPrefix(err, v.Error) {
						t.Fatalf("error %v has no path starting with %s", err, v.Error)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var got, want map[string]any
				if err := json.Unmarshal(task.Envelope(), &got); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(v.Expected, &want); err != nil {
					t.Fatal(err)
				}
				producer, _ := got["producer"].(map[string]any)
				if producer["sdk"] != SDKName || producer["version"] != Version {
					t.Errorf("producer = %v", got["producer"])
				}
				delete(got, "producer")
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("built\n  %s\nwant\n  %s", mustJSON(got), mustJSON(want))
				}
			})
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestSigningVectors(t *testing.T) {
	var vectors []struct {
		Description string `json:"description"`
		Key         string `json:"key"`
		KeyID       string `json:"key_id"`
		Body        string `json:"body"`
		Signature   string `json:"signature"`
		Valid       *bool  `json:"valid"`
	}
	readJSON(t, filepath.Join(vectorsDir(t), "signing.json"), &vectors)
	for _, v := range vectors {
		v := v
		t.Run("signing: "+v.Description, func(t *testing.T) {
			valid := v.Valid == nil || *v.Valid
			body := []byte(v.Body)
			if got := Sign(body, v.Key); (got == v.Signature) != valid {
				t.Fatalf("Sign = %s, vector signature %s (valid %v)", got, v.Signature, valid)
			}
			if Verify(body, v.Signature, v.Key) != valid {
				t.Fatalf("Verify = %v, want %v", !valid, valid)
			}
			if valid && !Verify(body, strings.ToUpper(v.Signature), v.Key) {
				t.Fatal("upper-case signature refused")
			}
			if !ValidKeyID(v.KeyID) {
				t.Fatalf("key id %q refused", v.KeyID)
			}
		})
	}
}

// The README's worked example, byte for byte.
func TestSigningWorkedExample(t *testing.T) {
	body := `{"phlask":1,"id":"greet-7","lang":"node","file":"jobs/greet.js","args":["Zoë"],"created_at":"2026-11-28T02:44:03.123Z"}`
	const secret = "correct horse battery staple"
	for suffix, want := range map[string]string{
		"":   "1a08ee4608e6ee8244e83b06952481133a09bdb08259fc6623d36474ced85532",
		"\n": "965552230febf21850bc38f7bbf8c4b2189a83f49c25801caae5255db415428f",
	} {
		if got := Sign([]byte(body+suffix), secret); got != want {
			t.Errorf("Sign(body%q) = %s, want %s", suffix, got, want)
		}
	}
	escaped := strings.Replace(body, "ë", `\u00eb`, 1)
	if got := Sign([]byte(escaped), secret); got != "862cc27ce550f6c603b94dfb296a39b9e0f108647b8308c71aa1e94b2635ff4c" {
		t.Errorf("escaped body signs as %s", got)
	}
}

func TestEmbeddedContractMatchesSpec(t *testing.T) {
	// Given the copies this module embeds, when compared with spec/, then they are equal
	// byte for byte (run `go generate` to refresh them).
	for name, embedded := range map[string][]byte{"task.schema.json": taskSchemaJSON, "wire.json": wireJSON} {
		spec, err := os.ReadFile(filepath.Join(repoRoot(t), "spec", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(spec, embedded) {
			t.Errorf("schema/%s differs from spec/%s: run `go generate` in sdks/go", name, name)
		}
	}
}
