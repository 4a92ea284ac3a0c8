package phlask

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// specBlock returns the fenced block of a backend document that starts with marker.
func specBlock(t *testing.T, doc, marker string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "spec", "backends", doc))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```[a-z]*\n(" + regexp.QuoteMeta(marker) + ".*?)```")
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("spec/backends/%s has no block starting with %q", doc, marker)
	}
	return string(m[1])
}

func TestSQLiteStatementsMatchSpec(t *testing.T) {
	// Given the normative SQL blocks of spec/backends/sqlite.md, then this SDK's
	// statements are the same text.
	if got := specBlock(t, "sqlite.md", "-- phlask:schema 1"); got != sqliteSchema {
		t.Errorf("schema block drifted from spec/backends/sqlite.md:\n%s", got)
	}
	if got := specBlock(t, "sqlite.md", "-- phlask:producer-insert"); got != sqliteProducerInsert {
		t.Errorf("producer insert drifted from spec/backends/sqlite.md:\n%s", got)
	}
}

func TestSQLiteURLs(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// The table of spec/backends/sqlite.md section 2.
	for url, want := range map[string]string{
		"sqlite:///var/lib/phlask/queue.db":  "/var/lib/phlask/queue.db",
		"sqlite:////var/lib/phlask/queue.db": "/var/lib/phlask/queue.db",
		"sqlite:/var/lib/phlask/queue.db":    "/var/lib/phlask/queue.db",
		"SQLite:///var/q.db":                 "/var/q.db",
		"sqlite:queue.db":                    filepath.Join(wd, "queue.db"),
		"sqlite:./data/queue.db":             filepath.Join(wd, "data", "queue.db"),
		"sqlite:///var/lib/phlask queue.db":  "/var/lib/phlask queue.db",
		"sqlite:///var/a%20b.db":             "/var/a%20b.db", // taken as written
	} {
		got, err := sqlitePath(url)
		if err != nil || got != want {
			t.Errorf("sqlitePath(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
	for _, url := range []string{"sqlite://host/queue.db", "sqlite:///", "sqlite:", "sqlite://",
		"sqlite:///:memory:", "sqlite::memory:", "sqlite:///~/queue.db", "sqlite:~/q.db",
		"sqlite:///q.db?mode=ro", "sqlite:///q.db#x", "file:///q.db"} {
		if got, err := sqlitePath(url); !errors.Is(err, ErrConfig) {
			t.Errorf("sqlitePath(%q) = %q, %v; want ErrConfig", url, got, err)
		} else if !strings.Contains(err.Error(), "sqlite") {
			t.Errorf("sqlitePath(%q): %v does not say how to write the URL", url, err)
		}
	}
}

// specBlockAfter returns the fenced block that follows an HTML comment such as
// <!-- phlask:producer-document --> in a backend document.
func specBlockAfter(t *testing.T, doc, comment string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "spec", "backends", doc))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)" + regexp.QuoteMeta(comment) + "\\s*```[a-z]*\n(.*?)```")
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("spec/backends/%s has no block after %q", doc, comment)
	}
	return string(m[1])
}
