package phlask

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The two normative SQL blocks of spec/backends/sqlite.md, byte for byte
// (TestSQLiteStatementsMatchSpec fails when they drift).
const (
	sqliteSchemaVersion = 1

	sqliteSchema = `-- phlask:schema 1
CREATE TABLE IF NOT EXISTS phlask_tasks (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    queue       TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    priority    INTEGER NOT NULL DEFAULT 0,
    run_at      REAL    NOT NULL,
    expires_at  REAL,
    body        BLOB    NOT NULL,
    signature   TEXT,
    key_id      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_until REAL,
    reason      TEXT,
    result      TEXT,
    enqueued_at REAL    NOT NULL DEFAULT (round((julianday('now') - 2440587.5) * 86400.0, 3)),
    updated_at  REAL    NOT NULL DEFAULT (round((julianday('now') - 2440587.5) * 86400.0, 3))
);
CREATE INDEX IF NOT EXISTS phlask_tasks_claim
    ON phlask_tasks (queue, state, priority DESC, run_at, seq);
PRAGMA user_version = 1;
`

	sqliteProducerInsert = `-- phlask:producer-insert
INSERT INTO phlask_tasks (id, queue, state, priority, run_at, expires_at, body, signature, key_id)
VALUES (:id, :queue, 'queued', :priority,
        coalesce(:not_before, round((julianday('now') - 2440587.5) * 86400.0, 3)),
        :expires_at, CAST(:body AS BLOB), :signature, :key_id);
`
)

// sqliteBusyTimeoutMS is how long a writer waits for another writer's transaction
// (spec/backends/sqlite.md section 3: the runner's 30 seconds).
const sqliteBusyTimeoutMS = 30000

// sqlitePath returns the database file of a sqlite: URL, by the rule of
// spec/backends/sqlite.md section 2: what follows "sqlite:" and an empty "//" authority,
// taken as written. Relative paths are made absolute against the working directory.
func sqlitePath(rawURL string) (string, error) {
	how := "write sqlite:///absolute/path/queue.db, or sqlite:relative/queue.db for a path relative to the working directory"
	scheme, rest, ok := strings.Cut(rawURL, ":")
	if !ok || !strings.EqualFold(scheme, "sqlite") {
		return "", fmt.Errorf("%w: not a sqlite URL; %s", ErrConfig, how)
	}
	path := rest
	if strings.HasPrefix(rest, "//") {
		host, tail, found := strings.Cut(rest[2:], "/")
		if host != "" {
			return "", fmt.Errorf("%w: a sqlite file has no host (%q); %s", ErrConfig, host, how)
		}
		path = ""
		if found {
			path = "/" + tail
		}
	}
	if strings.Trim(path, "/") == "" {
		return "", fmt.Errorf("%w: the URL names no file; %s", ErrConfig, how)
	}
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("%w: the sqlite backend takes no ?options or #fragment; %s", ErrConfig, how)
	}
	bare := strings.TrimLeft(path, "/")
	if bare == ":memory:" {
		return "", fmt.Errorf("%w: no in-memory queue, runners and producers share a file; %s", ErrConfig, how)
	}
	if strings.HasPrefix(bare, "~") {
		return "", fmt.Errorf("%w: '~' is not expanded; give the absolute path: %s", ErrConfig, how)
	}
	if strings.HasPrefix(path, "/") {
		path = "/" + bare
	}
	return filepath.Abs(path)
}

type sqliteBackend struct {
	path string
	db   *sql.DB
}

func openSQLite(ctx context.Context, rawURL string) (backend, error) {
	path, err := sqlitePath(rawURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return nil, err
	}
	// Every pooled connection waits for the write lock instead of failing with
	// SQLITE_BUSY, and every transaction is BEGIN IMMEDIATE (section 3).
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		path, sqliteBusyTimeoutMS)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	b := &sqliteBackend{path: path, db: db}
	if err := b.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return b, nil
}

// prepare switches the file to WAL and creates the schema when the file has none
// (sections 3 and 10).
func (b *sqliteBackend) prepare(ctx context.Context) error {
	var mode string
	if err := b.db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("%s: cannot switch to WAL mode (got %q); keep the queue file on a local filesystem", b.path, mode)
	}
	version, err := userVersion(ctx, b.db)
	if err != nil || version == sqliteSchemaVersion {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Another process may have created the schema while this one waited for the lock.
	if version, err = userVersion(ctx, tx); err != nil {
		return err
	}
	switch version {
	case 0:
		for _, stmt := range strings.Split(sqliteSchema, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
	case sqliteSchemaVersion:
	default:
		return fmt.Errorf("%s has schema version %d; this SDK knows version %d: upgrade the phlask Go SDK",
			b.path, version, sqliteSchemaVersion)
	}
	return tx.Commit()
}

func userVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// enqueue inserts every message in one BEGIN IMMEDIATE transaction (section 6): all are
// stored or, on any error, none.
func (b *sqliteBackend) enqueue(ctx context.Context, msgs []message) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, m := range msgs {
		_, err := tx.ExecContext(ctx, sqliteProducerInsert,
			sql.Named("id", m.task.id),
			sql.Named("queue", m.task.queue),
			sql.Named("priority", int64(m.task.priority)),
			sql.Named("not_before", epochSeconds(m.task.notBefore)),
			sql.Named("expires_at", epochSeconds(m.task.expiresAt)),
			sql.Named("body", m.body),
			sql.Named("signature", nullable(m.signature)),
			sql.Named("key_id", nullable(m.keyID)),
		)
		if err != nil {
			var serr *sqlite.Error
			if errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
				return &DuplicateIDError{ID: m.task.id, Err: err}
			}
			return err
		}
	}
	return tx.Commit()
}

func (b *sqliteBackend) close() error { return b.db.Close() }

// epochSeconds is a time as Unix seconds with a fraction (section 5), or NULL.
func epochSeconds(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return float64(t.UnixNano()) / 1e9
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
