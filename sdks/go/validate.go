package phlask

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// FieldError is one problem in an envelope: the JSON path of the field
// ($.backoff.factor, $.args[0]) and what is wrong with it.
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) String() string { return e.Path + ": " + e.Message }

// ValidationError reports every problem found in a task, each with its JSON path.
// NewTask, NewInlineTask, Task.Validate, ValidateEnvelope and every Push return it.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	if len(parts) == 0 {
		return "phlask: invalid task"
	}
	return "phlask: invalid task: " + strings.Join(parts, "; ")
}

const schemaURL = "urn:phlask:schema:task:1"

var (
	taskSchema     = mustCompileSchema()
	timestampRegex = mustTimestampRegex()
)

func mustTimestampRegex() *regexp.Regexp {
	var doc struct {
		Defs struct {
			Timestamp struct {
				Pattern string `json:"pattern"`
			} `json:"timestamp"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(taskSchemaJSON, &doc); err != nil {
		panic(fmt.Sprintf("phlask: embedded task.schema.json: %v", err))
	}
	return regexp.MustCompile(doc.Defs.Timestamp.Pattern)
}

// mustCompileSchema compiles the embedded task schema with format assertion on, so that
// date-time checks real calendar dates. Go's regexp (RE2) gives `$` the ECMA-262 meaning
// the schema requires (end of text only), so the patterns apply as written.
func mustCompileSchema() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(taskSchemaJSON))
	if err != nil {
		panic(fmt.Sprintf("phlask: embedded task.schema.json is not valid JSON: %v", err))
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		panic(fmt.Sprintf("phlask: embedded task.schema.json: %v", err))
	}
	return c.MustCompile(schemaURL)
}

// ValidateEnvelope checks envelope JSON text exactly as a runner will receive it: at most
// limits.envelope_bytes of UTF-8, one JSON value without duplicate member names, valid
// against spec/task.schema.json (format asserted, ECMA-262 patterns). It returns nil or a
// *ValidationError listing every problem with its JSON path.
//
// Numbers are checked as written, so "max_attempts": 2.0 is an integer, as JSON Schema
// says, although encoding/json would refuse to decode it into an int.
func ValidateEnvelope(body []byte) error {
	if errs := envelopeErrors(body); len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

func envelopeErrors(body []byte) []FieldError {
	if limit := wire.Limits.EnvelopeBytes; len(body) > limit {
		return []FieldError{{"$", fmt.Sprintf("envelope is %d bytes; the limit is %d bytes (1 MiB). "+
			"Put large data somewhere the task can fetch it and pass a reference", len(body), limit)}}
	}
	if !utf8.Valid(body) {
		return []FieldError{{"$", "not valid UTF-8: envelopes are UTF-8 JSON text"}}
	}
	value, err := decodeJSON(body)
	if err != nil {
		return []FieldError{{"$", "not valid JSON: " + err.Error()}}
	}
	if path := duplicateMember(body); path != "" {
		return []FieldError{{path, "duplicate member name: every name in an object must be unique"}}
	}
	err = taskSchema.Validate(value)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []FieldError{{"$", err.Error()}}
	}
	return explain(verr)
}

// decodeJSON parses exactly one JSON value, keeping numbers as written (json.Number).
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// duplicateMember returns the path of the first object member whose name repeats, or "".
// encoding/json keeps the last of two equal names silently; runners may refuse them.
func duplicateMember(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func(path string) string
	walk = func(path string) string {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				t, err := dec.Token()
				if err != nil {
					return ""
				}
				name, _ := t.(string)
				child := path + "." + name
				if seen[name] {
					return child
				}
				seen[name] = true
				if p := walk(child); p != "" {
					return p
				}
			}
			dec.Token() //nolint:errcheck // the closing brace
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if p := walk(fmt.Sprintf("%s[%d]", path, i)); p != "" {
					return p
				}
			}
			dec.Token() //nolint:errcheck // the closing bracket
		}
		return ""
	}
	return walk("$")
}

var hints = map[string]string{
	"id":    "must be 1-128 characters of A-Z a-z 0-9 . _ : - (no spaces)",
	"queue": "must start with a-z or 0-9 and be at most 64 characters of a-z 0-9 . _ -",
	"lang":  "must be an adapter name: a lowercase letter, then at most 31 of a-z 0-9 _ -",
}

const (
	timestampHint = "must be an RFC 3339 date-time with an offset, such as 2026-11-28T09:00:00Z"
	envNameHint   = "is not a valid environment variable name (letters, digits and _, not starting with a digit)"
	nulHint       = "must not contain a NUL character (processes cannot receive one)"
)

// explain turns the validator's error tree into one FieldError per problem, with the
// Python runner's paths and wording (spec/README.md 10.6), sorted by path.
func explain(root *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	patternAt := map[string]bool{}
	var formats []FieldError
	var visit func(e *jsonschema.ValidationError)
	visit = func(e *jsonschema.ValidationError) {
		path := jsonPath(e.InstanceLocation)
		field := ""
		if n := len(e.InstanceLocation); n > 0 {
			field = e.InstanceLocation[n-1]
		}
		add := func(p, msg string) { out = append(out, FieldError{p, msg}) }
		switch k := e.ErrorKind.(type) {
		case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf, *kind.AnyOf:
			for _, c := range e.Causes {
				visit(c)
			}
		case *kind.OneOf:
			obj := len(e.InstanceLocation) == 0
			if obj && len(k.Subschemas) > 1 {
				add("$.code", "give exactly one of `file` or `code`, not both")
			} else if obj {
				add("$.file", "required: give exactly one of `file` (a script path) or `code` (inline source)")
			} else {
				add(path, "must match exactly one alternative")
			}
		case *kind.Required:
			for _, m := range k.Missing {
				add(path+"."+m, fmt.Sprintf("required field `%s` is missing", m))
			}
		case *kind.AdditionalProperties:
			known := knownMembers(e.SchemaURL)
			for _, p := range k.Properties {
				msg := fmt.Sprintf("unknown field `%s`", p)
				if near := closest(p, known); near != "" {
					msg += fmt.Sprintf("; did you mean `%s`?", near)
				} else if path == "$" {
					msg += "; put extensions in `meta`"
				}
				add(path+"."+p, msg)
			}
		case *kind.PropertyNames:
			// The name is validated as its own instance, so the location of the object
			// comes from the schema: .../properties/env/propertyNames is $.env.
			add(objectPath(e.SchemaURL)+"."+k.Property, fmt.Sprintf("%q %s", k.Property, envNameHint))
		case *kind.Type:
			want := strings.Join(k.Want, " or ")
			add(path, fmt.Sprintf("must be %s %s, not %s", article(want), want, describe(k.Got)))
		case *kind.Pattern:
			patternAt[path] = true
			switch {
			case strings.Contains(k.Want, `\x00`):
				add(path, nulHint)
			case isTimestampField(field):
				add(path, fmt.Sprintf("%q %s", k.Got, timestampHint))
			case hints[field] != "":
				add(path, fmt.Sprintf("%q %s", k.Got, hints[field]))
			default:
				add(path, fmt.Sprintf("%q does not match %s", k.Got, k.Want))
			}
		case *kind.Format:
			// The validator stops at a failed format before trying the pattern, so tell
			// a malformed timestamp from an impossible date here.
			if s, ok := k.Got.(string); ok && !timestampRegex.MatchString(s) {
				add(path, fmt.Sprintf("%q %s", s, timestampHint))
			} else {
				formats = append(formats, FieldError{path, fmt.Sprintf("%q is not a real date-time (check the day of the month)", k.Got)})
			}
		case *kind.Const:
			add(path, fmt.Sprintf("must be %v: this SDK speaks protocol version %d only", k.Want, wire.ProtocolVersion))
		case *kind.Minimum:
			add(path, fmt.Sprintf("must be >= %s, got %s", ratString(k.Want.FloatString(6)), ratString(k.Got.FloatString(6))))
		case *kind.Maximum:
			add(path, fmt.Sprintf("must be <= %s, got %s", ratString(k.Want.FloatString(6)), ratString(k.Got.FloatString(6))))
		case *kind.ExclusiveMinimum:
			add(path, fmt.Sprintf("must be > %s, got %s", ratString(k.Want.FloatString(6)), ratString(k.Got.FloatString(6))))
		case *kind.MinLength:
			add(path, "must not be empty")
		case *kind.MaxLength:
			add(path, fmt.Sprintf("must be at most %d characters, got %d", k.Want, k.Got))
		case *kind.MaxProperties:
			add(path, fmt.Sprintf("must have at most %d entries, got %d", k.Want, k.Got))
		default:
			add(path, strings.TrimPrefix(e.Error(), "at "))
		}
	}
	visit(root)
	for _, f := range formats {
		if !patternAt[f.Path] { // a malformed timestamp needs one message, not two
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	// The same problem can be reached twice (oneOf alternatives); report it once.
	uniq := out[:0]
	for i, fe := range out {
		if i == 0 || fe != out[i-1] {
			uniq = append(uniq, fe)
		}
	}
	return uniq
}

func jsonPath(loc []string) string {
	var b strings.Builder
	b.WriteString("$")
	for i, tok := range loc {
		// Array items are numeric tokens under an array-valued field; args is the only
		// array in the schema, and an object member named "0" is written .0 like Python.
		if i > 0 && loc[i-1] == "args" && i == 1 && isDigits(tok) {
			b.WriteString("[" + tok + "]")
			continue
		}
		b.WriteString("." + tok)
	}
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// schemaPointer returns the JSON pointer tokens of a schema location such as
// urn:phlask:schema:task:1#/properties/env/propertyNames.
func schemaPointer(loc string) []string {
	_, frag, _ := strings.Cut(loc, "#")
	var toks []string
	for _, t := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if t == "" {
			continue
		}
		if u, err := url.PathUnescape(t); err == nil {
			t = u
		}
		toks = append(toks, strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~"))
	}
	return toks
}

func objectPath(schemaLoc string) string {
	toks := schemaPointer(schemaLoc)
	var loc []string
	for i := 0; i+1 < len(toks); i++ {
		if toks[i] == "properties" {
			loc = append(loc, toks[i+1])
			i++
		}
	}
	return jsonPath(loc)
}

// knownMembers lists the properties the schema at loc declares, for "did you mean".
func knownMembers(schemaLoc string) []string {
	var node any
	if err := json.Unmarshal(taskSchemaJSON, &node); err != nil {
		return nil
	}
	for _, t := range schemaPointer(schemaLoc) {
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = m[t]
	}
	m, _ := node.(map[string]any)
	props, _ := m["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// closest returns the known name nearest to name (a typo or a case or style slip such as
// Timeout or maxAttempts), or "" when none is near.
func closest(name string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "") }
	best, bestDist := "", 3
	for _, k := range known {
		if norm(k) == norm(name) {
			return k
		}
		if d := levenshtein(name, k); d < bestDist && d*3 <= len(k) {
			best, bestDist = k, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := make([]int, len(rb)+1)
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(rb)]
}

func isTimestampField(f string) bool {
	return f == "created_at" || f == "not_before" || f == "expires_at"
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func describe(jsonType string) string {
	if jsonType == "null" {
		return "null"
	}
	return article(jsonType) + " " + jsonType
}

// ratString trims the zeros FloatString pads: 0.500000 -> 0.5, 1.000000 -> 1.
func ratString(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
