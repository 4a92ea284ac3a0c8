package phlask

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
)

// The contract files are copies of spec/task.schema.json and spec/wire.json, embedded so
// that the module needs nothing outside itself at run time. `go generate` refreshes them;
// TestEmbeddedContractMatchesSpec fails when a copy differs from spec/.
//
//go:generate cp ../../spec/task.schema.json ../../spec/wire.json schema/

//go:embed schema/task.schema.json
var taskSchemaJSON []byte

//go:embed schema/wire.json
var wireJSON []byte

// wireConstants is the part of spec/wire.json the SDK uses.
type wireConstants struct {
	ProtocolVersion int `json:"protocol_version"`
	Limits          struct {
		EnvelopeBytes int `json:"envelope_bytes"`
		CodeChars     int `json:"code_chars"`
		MetaEntries   int `json:"meta_entries"`
	} `json:"limits"`
	Defaults struct {
		Queue       string `json:"queue"`
		MaxAttempts int    `json:"max_attempts"`
		Priority    int    `json:"priority"`
		Backoff     struct {
			Initial float64 `json:"initial"`
			Factor  float64 `json:"factor"`
			Max     float64 `json:"max"`
			Jitter  bool    `json:"jitter"`
		} `json:"backoff"`
	} `json:"defaults"`
	Signature struct {
		Algorithm    string `json:"algorithm"`
		KeyIDPattern string `json:"key_id_pattern"`
	} `json:"signature"`
}

var (
	wire       = mustLoadWire()
	keyIDRegex = regexp.MustCompile(wire.Signature.KeyIDPattern)
)

func mustLoadWire() wireConstants {
	var w wireConstants
	if err := json.Unmarshal(wireJSON, &w); err != nil {
		panic(fmt.Sprintf("phlask: embedded wire.json is not valid: %v", err))
	}
	return w
}
