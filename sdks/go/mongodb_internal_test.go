package phlask

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestMongoDocumentMatchesSpec compares the document this SDK inserts with the
// normative producer document of spec/backends/mongodb.md section 6: the same fields in
// the same order, with the same BSON types.
func TestMongoDocumentMatchesSpec(t *testing.T) {
	block := specBlockAfter(t, "mongodb.md", "<!-- phlask:producer-document -->")
	var spec bson.D
	if err := bson.UnmarshalExtJSON([]byte(block), false, &spec); err != nil {
		t.Fatalf("producer document block: %v", err)
	}
	specRaw, err := bson.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	task, err := NewTask("php", "/srv/jobs/report.php", WithQueue("reports"), WithPriority(5))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := bson.Marshal(mongoDocument(message{task: task, body: task.body}, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := bson.Raw(specRaw).Elements()
	got, _ := bson.Raw(ours).Elements()
	if len(got) != len(want) {
		t.Fatalf("%d fields, the spec has %d:\n%v\n%v", len(got), len(want), bson.Raw(ours), bson.Raw(specRaw))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Key() != g.Key() {
			t.Errorf("field %d is %q, the spec's is %q", i, g.Key(), w.Key())
			continue
		}
		wt, gt := w.Value().Type, g.Value().Type
		// The spec's integers are written in relaxed Extended JSON, which reads as int32.
		if wt != gt {
			t.Errorf("%s: BSON type %v, the spec's is %v", w.Key(), gt, wt)
		}
	}
	for _, key := range []string{"state", "gen", "attempts", "expires_at", "signature", "key_id", "queue", "priority"} {
		if w, g := bson.Raw(specRaw).Lookup(key), bson.Raw(ours).Lookup(key); !w.Equal(g) {
			t.Errorf("%s = %v, the spec's is %v", key, g, w)
		}
	}
	if sub, data := bson.Raw(ours).Lookup("body").Binary(); sub != 0 || string(data) != string(task.body) {
		t.Errorf("body subtype %d, %s", sub, data)
	}
}

func TestMongoURL(t *testing.T) {
	for raw, want := range map[string][2]string{
		"mongodb://h:27017/db":                                    {"mongodb://h:27017/db", "phlask_tasks"},
		"mongodb://h:27017/db?collection=jobs":                    {"mongodb://h:27017/db", "jobs"},
		"mongodb://a:1,b:2/db?replicaSet=rs0&collection=jobs&w=1": {"mongodb://a:1,b:2/db?replicaSet=rs0&w=1", "jobs"},
	} {
		u, c, err := mongoURL(raw)
		if err != nil || u != want[0] || c != want[1] {
			t.Errorf("mongoURL(%q) = %q, %q, %v; want %q", raw, u, c, err, want)
		}
	}
}
