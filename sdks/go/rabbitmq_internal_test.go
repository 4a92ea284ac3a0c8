package phlask

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestRabbitMQConstantsMatchSpec compares this SDK's names, arguments and headers with
// the normative block of spec/backends/rabbitmq.md section 13.
func TestRabbitMQConstantsMatchSpec(t *testing.T) {
	var spec struct {
		Exchange     string                    `json:"exchange"`
		ContentType  string                    `json:"content_type"`
		DeliveryMode int                       `json:"delivery_mode"`
		Names        map[string]string         `json:"names"`
		Arguments    map[string]map[string]any `json:"arguments"`
		Headers      map[string]string         `json:"headers"`
		MaxDelayMS   int64                     `json:"max_delay_ms"`
		Examples     [][2]int64                `json:"delay_examples"`
	}
	block := specBlock(t, "rabbitmq.md", `{`+"\n"+`  "phlask:rabbitmq": 1`)
	if err := json.Unmarshal([]byte(block), &spec); err != nil {
		t.Fatalf("section 13 block: %v", err)
	}
	if spec.Exchange != "" || spec.ContentType != rabbitContentType || spec.DeliveryMode != int(rabbitDeliveryMode) {
		t.Errorf("exchange %q content type %q delivery mode %d", spec.Exchange, spec.ContentType, spec.DeliveryMode)
	}
	if spec.MaxDelayMS != rabbitMaxDelayMS {
		t.Errorf("max_delay_ms %d", spec.MaxDelayMS)
	}
	if w := strings.ReplaceAll(spec.Names["work"], "{queue}", "q"); w != rabbitDefaultPrefix+"q" {
		t.Errorf("work queue name %q", spec.Names["work"])
	}
	if d := strings.NewReplacer("{queue}", "q", "{ttl}", "5").Replace(spec.Names["delay"]); d != rabbitDefaultPrefix+"q:delay:5" {
		t.Errorf("delay queue name %q", spec.Names["delay"])
	}
	for key, want := range map[string]string{"signature": headerSignature, "key_id": headerKeyID, "not_before": headerNotBefore} {
		if spec.Headers[key] != want {
			t.Errorf("header %s = %q, want %q", key, spec.Headers[key], want)
		}
	}
	// Arguments: the spec writes "{ttl}" and "{ttl} + 600000" for values that depend on
	// the bucket; substitute ttl = 5000 and the work queue phlask.q.
	subst := func(v any) string {
		s := fmt.Sprint(v)
		s = strings.NewReplacer("{ttl} + 600000", "605000", "{ttl}", "5000", "{queue}", "q").Replace(s)
		return s
	}
	compare := func(name string, specArgs map[string]any, got map[string]any) {
		want := map[string]string{}
		for k, v := range specArgs {
			want[k] = subst(v)
		}
		have := map[string]string{}
		for k, v := range got {
			have[k] = fmt.Sprint(v)
		}
		if !reflect.DeepEqual(want, have) {
			t.Errorf("%s queue arguments %v, spec %v", name, have, want)
		}
	}
	compare("work", spec.Arguments["work"], rabbitWorkArgs())
	compare("delay", spec.Arguments["delay"], rabbitDelayArgs(rabbitDefaultPrefix+"q", 5000))
	for _, ex := range spec.Examples {
		if got := rabbitBucket(ex[0]); got != ex[1] {
			t.Errorf("bucket(%d) = %d, want %d", ex[0], got, ex[1])
		}
	}
	if len(spec.Examples) == 0 {
		t.Error("no delay_examples in the spec block")
	}
}
