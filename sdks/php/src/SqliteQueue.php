<?php

declare(strict_types=1);

namespace Phlask;

use Phlask\Exception\BackendError;
use Phlask\Exception\ConfigError;
use Phlask\Exception\DuplicateTask;
use Phlask\Exception\Unreachable;

/**
 * The embedded SQLite backend (spec/backends/sqlite.md): one database file shared by the
 * producers and runners of one host.
 *
 *     $queue = new SqliteQueue(['path' => '/var/lib/phlask/queue.db']);
 *     $queue = Queue::connect('sqlite:///var/lib/phlask/queue.db');
 *
 * Options: `url` (`sqlite:///abs/path.db`, or `sqlite:rel/path.db` relative to the working
 * directory) or `path`; `busy_timeout` (seconds to wait for another writer, default 30);
 * `signing_key`. Opening creates missing directories, the file and its schema.
 */
final class SqliteQueue extends Queue
{
    public const SCHEMA_VERSION = 1;

    /** The block `-- phlask:schema 1` of spec/backends/sqlite.md, byte for byte (tests/WireTest.php). */
    public const SCHEMA = <<<'SQL'
        -- phlask:schema 1
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

        SQL;

    /** The block `-- phlask:producer-insert` of spec/backends/sqlite.md, byte for byte. */
    public const PRODUCER_INSERT = <<<'SQL'
        -- phlask:producer-insert
        INSERT INTO phlask_tasks (id, queue, state, priority, run_at, expires_at, body, signature, key_id)
        VALUES (:id, :queue, 'queued', :priority,
                coalesce(:not_before, round((julianday('now') - 2440587.5) * 86400.0, 3)),
                :expires_at, CAST(:body AS BLOB), :signature, :key_id);

        SQL;

    public readonly string $url;
    public readonly string $path;
    private ?\PDO $db = null;
    private ?\PDOStatement $insert = null;

    /**
     * @param array{url?: string, path?: string, busy_timeout?: int|float, signing_key?: mixed} $options
     * @throws ConfigError for a bad URL or option
     * @throws Unreachable when the file cannot be opened or created
     * @throws BackendError when the file holds a schema from a newer phlask or cannot use WAL
     */
    public function __construct(array $options)
    {
        self::checkOptions(self::class, $options, ['url', 'path', 'busy_timeout']);
        $this->signingKey = SigningKey::from($options['signing_key'] ?? null);
        if (isset($options['url']) === isset($options['path'])) {
            throw new ConfigError("SqliteQueue: give exactly one of 'url' (sqlite:///abs/path/queue.db) or 'path'");
        }
        $this->path = isset($options['url']) ? self::parseUrl((string) $options['url']) : self::absolute((string) $options['path']);
        $this->url = $options['url'] ?? 'sqlite://' . $this->path;
        $busy = $options['busy_timeout'] ?? 30;
        if (!is_int($busy) && !is_float($busy) || $busy < 0) {
            throw new ConfigError('SqliteQueue: busy_timeout is seconds, a number >= 0');
        }
        $this->open((int) round($busy * 1000));
    }

    /**
     * The file a `sqlite:` URL names (spec/backends/sqlite.md, section 2), made absolute.
     *
     * @throws ConfigError
     */
    public static function parseUrl(string $url): string
    {
        $how = 'write sqlite:///absolute/path/queue.db, or sqlite:relative/queue.db for a path relative to the working directory';
        $shown = json_encode($url, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE);
        if (!preg_match('/^sqlite:/i', $url)) {
            throw new ConfigError("queue URL $shown is not a sqlite URL; $how");
        }
        $path = substr($url, strlen('sqlite:'));
        if (str_starts_with($path, '//')) {
            $slash = strpos($path, '/', 2);
            $host = $slash === false ? substr($path, 2) : substr($path, 2, $slash - 2);
            if ($host !== '') {
                throw new ConfigError("queue URL $shown: a sqlite file has no host ($host); $how");
            }
            $path = (string) substr($path, 2);
        }
        if (trim($path, '/') === '') {
            throw new ConfigError("queue URL $shown names no file; $how");
        }
        if (strpbrk($path, '?#') !== false) {
            throw new ConfigError("queue URL $shown: the sqlite backend takes no ?options or #fragment; $how");
        }
        $bare = ltrim($path, '/');
        if ($bare === ':memory:') {
            throw new ConfigError("queue URL $shown: no in-memory queue, runners and producers share a file; $how");
        }
        if (str_starts_with($bare, '~')) {
            throw new ConfigError("queue URL $shown: '~' is not expanded; give the absolute path");
        }
        return self::absolute(str_starts_with($path, '/') ? '/' . $bare : $path);
    }

    public function close(): void
    {
        $this->insert = null;
        $this->db = null;
    }

    protected function write(array $messages): void
    {
        $db = $this->db ?? throw new BackendError("SqliteQueue {$this->path} is closed");
        $this->insert ??= $db->prepare(self::PRODUCER_INSERT);
        $current = null;
        try {
            $db->exec('BEGIN IMMEDIATE');
            foreach ($messages as $current) {
                $this->insert->execute([
                    ':id' => $current->id,
                    ':queue' => $current->queue,
                    ':priority' => $current->priority,
                    ':not_before' => $current->notBeforeMs === null ? null : $current->notBeforeMs / 1000,
                    ':expires_at' => $current->expiresAtMs === null ? null : $current->expiresAtMs / 1000,
                    ':body' => $current->body,
                    ':signature' => $current->signature,
                    ':key_id' => $current->keyId,
                ]);
            }
            $db->exec('COMMIT');
        } catch (\PDOException $e) {
            if ($db->inTransaction()) { // pdo_sqlite asks SQLite itself, so BEGIN IMMEDIATE counts
                $db->exec('ROLLBACK');
            }
            if ($current !== null && str_contains($e->getMessage(), 'UNIQUE constraint failed: phlask_tasks.id')) {
                throw new DuplicateTask($current->id, $this->path . ' (nothing of this batch was enqueued)', $e);
            }
            throw new BackendError("sqlite {$this->path}: {$e->getMessage()}", 0, $e);
        }
    }

    private function open(int $busyMs): void
    {
        $dir = dirname($this->path);
        try {
            if (!is_dir($dir) && !@mkdir($dir, 0777, true) && !is_dir($dir)) {
                throw new \RuntimeException("cannot create directory $dir: " . (error_get_last()['message'] ?? 'mkdir failed'));
            }
            $db = new \PDO('sqlite:' . $this->path, null, null, [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION]);
            $db->exec('PRAGMA busy_timeout = ' . $busyMs);
            $mode = $db->query('PRAGMA journal_mode = WAL')->fetchColumn();
        } catch (\PDOException|\RuntimeException $e) {
            throw new Unreachable($this->url, "cannot open {$this->path}: {$e->getMessage()}", $e);
        }
        if (strtolower((string) $mode) !== 'wal') {
            throw new BackendError("{$this->path}: cannot switch to WAL mode (got $mode); keep the queue file on a local filesystem");
        }
        try {
            $db->exec('PRAGMA synchronous = NORMAL');
            $this->ensureSchema($db);
        } catch (\PDOException $e) {
            throw new Unreachable($this->url, "cannot use {$this->path}: {$e->getMessage()}", $e);
        }
        $this->db = $db;
    }

    private function ensureSchema(\PDO $db): void
    {
        if ((int) $db->query('PRAGMA user_version')->fetchColumn() === self::SCHEMA_VERSION) {
            return;
        }
        $db->exec('BEGIN IMMEDIATE');
        try {
            // Read again under the write lock: another process may have just created it.
            $version = (int) $db->query('PRAGMA user_version')->fetchColumn();
            if ($version === 0) {
                $db->exec(self::SCHEMA);
            } elseif ($version !== self::SCHEMA_VERSION) {
                throw new BackendError(sprintf(
                    '%s has schema version %d; this phlask SDK knows version %d: upgrade phlask/phlask',
                    $this->path,
                    $version,
                    self::SCHEMA_VERSION,
                ));
            }
            $db->exec('COMMIT');
        } catch (\Throwable $e) {
            $db->exec('ROLLBACK');
            throw $e;
        }
    }

    private static function absolute(string $path): string
    {
        if ($path === '') {
            throw new ConfigError('SqliteQueue: the path is empty');
        }
        if (!str_starts_with($path, '/')) {
            $path = getcwd() . '/' . $path;
        }
        // Normalise . and .. lexically, as os.path.abspath does (the file may not exist yet).
        $parts = [];
        foreach (explode('/', $path) as $part) {
            if ($part === '' || $part === '.') {
                continue;
            }
            if ($part === '..') {
                array_pop($parts);
            } else {
                $parts[] = $part;
            }
        }
        return '/' . implode('/', $parts);
    }
}
