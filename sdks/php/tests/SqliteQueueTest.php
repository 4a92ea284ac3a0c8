<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\Exception\BackendError;
use Phlask\Exception\ConfigError;
use Phlask\SqliteQueue;
use Phlask\Task;
use Phlask\Timestamp;
use Phlask\Tests\Support\Backend;
use PHPUnit\Framework\TestCase;

/** The layout of spec/backends/sqlite.md, read back from the file. */
final class SqliteQueueTest extends TestCase
{
    private Backend $backend;

    protected function setUp(): void
    {
        $this->backend = new Backend('sqlite');
    }

    protected function tearDown(): void
    {
        $this->backend->cleanup();
    }

    public function testARowHoldsTheSchedulingCopiesOfTheEnvelope(): void
    {
        // Given a delayed, expiring, high-priority task and a plain one
        $queue = $this->backend->open();
        $delayed = Task::factory(['queue' => 'reports', 'lang' => 'php', 'file' => 'r.php', 'priority' => 7,
            'delay' => 90.25, 'expires_at' => '2030-01-01T00:00:00.500+01:00']);
        $plain = Task::factory(['lang' => 'shell', 'file' => 'x.sh']);

        // When both are pushed
        $before = microtime(true);
        $queue->pushMany([$delayed, $plain]);
        $after = microtime(true);

        // Then each row is the producer insert of section 6
        $rows = $this->rows();
        $this->assertSame([$delayed->id(), $plain->id()], array_column($rows, 'id'));
        [$d, $p] = $rows;
        $this->assertSame(['reports', 'queued', 7, 'blob', 0, null, null, null, null, null],
            [$d['queue'], $d['state'], $d['priority'], $d['body_type'], $d['attempts'], $d['lease_token'], $d['lease_until'], $d['reason'], $d['result'], $d['signature']]);
        $this->assertSame($delayed->toJson(), $d['body']);
        $this->assertEqualsWithDelta(Timestamp::toMillis($delayed->get('not_before')) / 1000, $d['run_at'], 0.0005);
        $this->assertEqualsWithDelta(1893452400.5, $d['expires_at'], 0.0005);
        $this->assertSame(['default', 0, null], [$p['queue'], $p['priority'], $p['expires_at']]);
        $this->assertGreaterThanOrEqual(floor($before * 1000) / 1000, $p['run_at'], 'ready now: run_at is the insert time');
        $this->assertLessThanOrEqual($after + 0.001, $p['run_at']);
        $this->assertIsFloat($p['enqueued_at']);
    }

    public function testOpeningCreatesTheSchemaInWalMode(): void
    {
        $queue = new SqliteQueue(['path' => $this->backend->dir() . '/deeper/dir/q.db']);
        $db = new \PDO('sqlite:' . $queue->path);
        $this->assertSame(1, (int) $db->query('PRAGMA user_version')->fetchColumn());
        $this->assertSame('wal', $db->query('PRAGMA journal_mode')->fetchColumn());
        $this->assertSame(['phlask_tasks_claim'], $db->query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")->fetchAll(\PDO::FETCH_COLUMN));
        new SqliteQueue(['path' => $queue->path]); // a second open leaves the file as it is
        $this->assertSame(1, (int) $db->query('PRAGMA user_version')->fetchColumn());
    }

    public function testAFileFromANewerPhlaskIsRefused(): void
    {
        $path = $this->backend->dir() . '/newer.db';
        (new \PDO('sqlite:' . $path))->exec('PRAGMA user_version = 2');
        $this->expectException(BackendError::class);
        $this->expectExceptionMessage('schema version 2');
        new SqliteQueue(['path' => $path]);
    }

    public function testAWriterThatCannotGetTheLockFailsAfterTheBusyTimeout(): void
    {
        $queue = $this->backend->open();
        $holder = new \PDO('sqlite:' . $this->backend->dir() . '/queue.db');
        $holder->exec('BEGIN IMMEDIATE');
        $waiting = new SqliteQueue(['url' => $this->backend->url, 'busy_timeout' => 0.2]);
        try {
            $waiting->push(['lang' => 'shell', 'file' => 'x.sh']);
            $this->fail('the write lock was not held');
        } catch (BackendError $e) {
            $this->assertStringContainsString('locked', $e->getMessage());
        } finally {
            $holder->exec('ROLLBACK');
        }
        $queue->push(['lang' => 'shell', 'file' => 'x.sh']);
        $this->assertCount(1, $this->rows(), 'the failed batch left nothing behind');
    }

    /** The URL table of spec/backends/sqlite.md, section 2. */
    public function testUrls(): void
    {
        $cwd = getcwd();
        foreach ([
            'sqlite:///var/lib/phlask/queue.db' => '/var/lib/phlask/queue.db',
            'sqlite:////var/lib/phlask/queue.db' => '/var/lib/phlask/queue.db',
            'sqlite:/var/lib/phlask/queue.db' => '/var/lib/phlask/queue.db',
            'SQLITE:///a/../b/./q.db' => '/b/q.db',
            'sqlite:queue.db' => "$cwd/queue.db",
            'sqlite:./data/queue.db' => "$cwd/data/queue.db",
        ] as $url => $path) {
            $this->assertSame($path, SqliteQueue::parseUrl($url), $url);
        }
        foreach (['sqlite://host/queue.db', 'sqlite:///', 'sqlite:', 'sqlite:///:memory:', 'sqlite:///~/queue.db',
            'sqlite:~/q.db', 'sqlite:///q.db?mode=ro', 'sqlite:///q.db#x', 'file:///q.db'] as $url) {
            try {
                SqliteQueue::parseUrl($url);
                $this->fail("accepted $url");
            } catch (ConfigError $e) {
                $this->assertStringContainsString(json_encode($url, JSON_UNESCAPED_SLASHES), $e->getMessage());
            }
        }
    }

    public function testOptionsAreChecked(): void
    {
        $this->expectException(ConfigError::class);
        $this->expectExceptionMessage('unknown option "busytimeout"');
        new SqliteQueue(['path' => $this->backend->dir() . '/q.db', 'busytimeout' => 1]);
    }

    /** @return list<array<string, mixed>> */
    private function rows(): array
    {
        $db = new \PDO('sqlite:' . $this->backend->dir() . '/queue.db');
        return $db->query('SELECT *, typeof(body) AS body_type FROM phlask_tasks ORDER BY seq')->fetchAll(\PDO::FETCH_ASSOC);
    }
}
