// Command go is the conformance driver for the Go SDK (sdks/go): one JSON request on
// stdin, one JSON response on stdout. The protocol is in conformance/README.md, "Drivers".
// conformance/run builds it once per run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	phlask "github.com/phlask/phlask/sdks/go"
)

type request struct {
	Op            string   `json:"op"`
	Files         []string `json:"files"`
	URL           string   `json:"url"`
	Tasks         []inputs `json:"tasks"`
	SigningKey    []string `json:"signing_key"`
	EnvelopeInput inputs   `json:"envelope_input"`
	Now           string   `json:"now"`
	Key           []string `json:"key"`
}

// inputs are builder inputs under their spec field names (conformance/README.md).
type inputs map[string]json.RawMessage

type verdict struct {
	Valid   bool     `json:"valid"`
	Paths   []string `json:"paths"`
	Message *string  `json:"message"`
}

type fieldErrors struct {
	Paths   []string `json:"paths"`
	Message string   `json:"message"`
}

func toVerdict(err error) verdict {
	v := verdict{Valid: err == nil, Paths: []string{}}
	if err == nil {
		return v
	}
	msg := err.Error()
	v.Message = &msg
	var verr *phlask.ValidationError
	if errors.As(err, &verr) {
		for _, fe := range verr.Errors {
			v.Paths = append(v.Paths, fe.Path)
		}
	}
	return v
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func validate(files []string) (any, error) {
	type result struct {
		File        string             `json:"file"`
		Description string             `json:"description"`
		Checks      map[string]verdict `json:"checks"`
	}
	results := []result{}
	for _, file := range files {
		var groups []struct {
			Tests []struct {
				Description string          `json:"description"`
				Data        json.RawMessage `json:"data"`
			} `json:"tests"`
		}
		if err := readJSON(file, &groups); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, g := range groups {
			for _, c := range g.Tests {
				// The raw text of data, as a decoder would receive it.
				_, fromEnvelope := phlask.TaskFromEnvelope(c.Data)
				results = append(results, result{file, c.Description, map[string]verdict{
					"ValidateEnvelope": toVerdict(phlask.ValidateEnvelope(c.Data)),
					"TaskFromEnvelope": toVerdict(fromEnvelope),
				}})
			}
		}
	}
	return map[string]any{"results": results}, nil
}

// unsupported is an input the Go API cannot express at all (its types refuse it).
type unsupported struct{ reason string }

func (u unsupported) Error() string { return u.reason }

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// newTask maps builder inputs onto the Go builder API. now is "" for the real clock.
func newTask(in inputs, now string) (*phlask.Task, error) {
	var opts []phlask.Option
	if now != "" {
		t, err := phlask.ParseTimestamp(now)
		if err != nil {
			return nil, fmt.Errorf("now: %w", err)
		}
		opts = append(opts, phlask.WithClock(func() time.Time { return t }))
	}
	var lang, file, code string
	var hasFile, hasCode bool
	for key, raw := range in {
		var err error
		str := func() (s string) { err = json.Unmarshal(raw, &s); return }
		num := func() (f float64) { err = json.Unmarshal(raw, &f); return }
		integer := func() int {
			f := num()
			if err == nil && f != math.Trunc(f) {
				err = unsupported{fmt.Sprintf("%s %v: the Go API takes an int", key, f)}
			}
			return int(f)
		}
		switch key {
		case "lang":
			lang = str()
		case "file":
			file, hasFile = str(), true
		case "code":
			code, hasCode = str(), true
		case "id":
			opts = append(opts, phlask.WithID(str()))
		case "queue":
			opts = append(opts, phlask.WithQueue(str()))
		case "args":
			var args []string
			err = json.Unmarshal(raw, &args)
			opts = append(opts, phlask.WithArgs(args...))
		case "env", "meta":
			var m map[string]string
			err = json.Unmarshal(raw, &m)
			if key == "env" {
				opts = append(opts, phlask.WithEnv(m))
			} else {
				opts = append(opts, phlask.WithMeta(m))
			}
		case "input":
			opts = append(opts, phlask.WithInput(raw))
		case "timeout":
			opts = append(opts, phlask.WithTimeout(seconds(num())))
		case "delay":
			opts = append(opts, phlask.WithDelay(seconds(num())))
		case "max_attempts":
			opts = append(opts, phlask.WithMaxAttempts(integer()))
		case "priority":
			opts = append(opts, phlask.WithPriority(integer()))
		case "backoff":
			var given struct {
				Initial, Factor, Max *float64
				Jitter               *bool
			}
			err = json.Unmarshal(raw, &given)
			bo := phlask.DefaultBackoff()
			if given.Initial != nil {
				bo.Initial = seconds(*given.Initial)
			}
			if given.Factor != nil {
				bo.Factor = *given.Factor
			}
			if given.Max != nil {
				bo.Max = seconds(*given.Max)
			}
			if given.Jitter != nil {
				bo.Jitter = *given.Jitter
			}
			opts = append(opts, phlask.WithBackoff(bo))
		case "not_before", "expires_at":
			var ts time.Time
			if ts, err = phlask.ParseTimestamp(str()); err == nil {
				if key == "not_before" {
					opts = append(opts, phlask.WithNotBefore(ts))
				} else {
					opts = append(opts, phlask.WithExpiresAt(ts))
				}
			}
		default:
			err = unsupported{fmt.Sprintf("no Go option for input %q", key)}
		}
		if err != nil {
			var u unsupported
			if errors.As(err, &u) {
				return nil, err
			}
			return nil, fmt.Errorf("input %s: %w", key, err)
		}
	}
	switch {
	case hasFile && hasCode:
		return nil, unsupported{"the Go API cannot give both file and code: NewTask takes a file, NewInlineTask a code"}
	case hasCode:
		return phlask.NewInlineTask(lang, code, opts...)
	default: // no file at all is NewTask(lang, ""), which the schema refuses at $.file
		return phlask.NewTask(lang, file, opts...)
	}
}

func build(files []string) (any, error) {
	results := []map[string]any{}
	for _, file := range files {
		var vectors []struct {
			Description string `json:"description"`
			Now         string `json:"now"`
			Input       inputs `json:"input"`
		}
		if err := readJSON(file, &vectors); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, v := range vectors {
			out := map[string]any{"file": file, "description": v.Description}
			task, err := newTask(v.Input, v.Now)
			var verr *phlask.ValidationError
			var u unsupported
			switch {
			case err == nil:
				out["body"] = string(task.Envelope())
			case errors.As(err, &verr):
				out["error"] = fieldErrors{toVerdict(err).Paths, err.Error()}
			case errors.As(err, &u):
				out["unsupported"] = u.reason
			default:
				return nil, fmt.Errorf("%s: %s: %w", file, v.Description, err)
			}
			results = append(results, out)
		}
	}
	return map[string]any{"results": results}, nil
}

func enqueue(url string, in []inputs, key []string) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var opts []phlask.OpenOption
	if len(key) == 2 {
		opts = append(opts, phlask.WithSigningKey(key[0], key[1]))
	}
	tasks := make([]*phlask.Task, len(in))
	for i, t := range in {
		var err error
		if tasks[i], err = newTask(t, ""); err != nil {
			return failure(err), nil
		}
	}
	q, err := phlask.Open(ctx, url, opts...)
	if err != nil {
		return failure(err), nil
	}
	defer q.Close()
	ids, err := q.PushMany(ctx, tasks)
	if err != nil {
		return failure(err), nil
	}
	return map[string]any{"ids": ids}, nil
}

func failure(err error) map[string]any {
	code := "error"
	switch {
	case errors.Is(err, phlask.ErrDuplicateID):
		code = "duplicate_id"
	case errors.Is(err, phlask.ErrConfig):
		code = "config"
	}
	return map[string]any{"error": map[string]string{"type": fmt.Sprintf("%T", err), "code": code, "message": err.Error()}}
}

func sign(in inputs, now string, key []string) (any, error) {
	if len(key) != 2 {
		return nil, errors.New("sign: key must be [id, secret]")
	}
	task, err := newTask(in, now)
	if err != nil {
		return nil, err
	}
	body := task.Envelope()
	return map[string]string{"body": string(body), "signature": phlask.Sign(body, key[1]), "key_id": key[0]}, nil
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "go driver: reading the request:", err)
		os.Exit(2)
	}
	var (
		resp any
		err  error
	)
	switch req.Op {
	case "validate":
		resp, err = validate(req.Files)
	case "build":
		resp, err = build(req.Files)
	case "enqueue":
		resp, err = enqueue(req.URL, req.Tasks, req.SigningKey)
	case "sign":
		resp, err = sign(req.EnvelopeInput, req.Now, req.Key)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go driver:", strings.TrimSpace(err.Error()))
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, "go driver: writing the response:", err)
		os.Exit(2)
	}
}
