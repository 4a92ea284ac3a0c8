<?php

declare(strict_types=1);

namespace Phlask\Tests;

use MongoDB\BSON\Binary;
use MongoDB\BSON\ObjectId;
use MongoDB\BSON\UTCDateTime;
use MongoDB\Driver\Query;
use Phlask\Exception\ConfigError;
use Phlask\Exception\DuplicateTask;
use Phlask\MongoQueue;
use Phlask\Task;
use Phlask\Timestamp;
use Phlask\Tests\Support\Backend;
use Phlask\Tests\Support\Repo;
use PHPUnit\Framework\TestCase;

/** The task document of spec/backends/mongodb.md, read back with its BSON types. */
final class MongoQueueTest extends TestCase
{
    private Backend $backend;

    protected function setUp(): void
    {
        $this->backend = new Backend('mongodb');
    }

    protected function tearDown(): void
    {
        $this->backend->cleanup();
    }

    public function testTheDocumentIsTheProducerDocumentOfSection6(): void
    {
        // Given a delayed, expiring, signed task and a plain one
        $queue = $this->backend->open(['signing_key' => ['k1', 'secret']]);
        $delayed = Task::factory(['queue' => 'reports', 'lang' => 'php', 'file' => 'r.php', 'priority' => 5,
            'delay' => 30, 'expires_at' => '2030-01-01T00:00:00.123456+01:00']);
        $plain = Task::factory(['lang' => 'shell', 'file' => 'x.sh']);

        // When they are pushed
        $before = Timestamp::nowMillis();
        $queue->pushMany([$delayed, $plain]);
        $after = Timestamp::nowMillis();

        // Then each document has exactly the fields of the normative example, in its order, with its types
        [$d, $p] = $this->documents();
        $this->assertSame(self::documentFields(), array_keys($d));
        $this->assertSame([$delayed->id(), 'reports', 'queued', 5, 0, 0], [$d['_id'], $d['queue'], $d['state'], $d['priority'], $d['gen'], $d['attempts']]);
        $this->assertInstanceOf(Binary::class, $d['body']);
        $this->assertSame([Binary::TYPE_GENERIC, $delayed->toJson()], [$d['body']->getType(), $d['body']->getData()]);
        $this->assertSame(hash_hmac('sha256', $delayed->toJson(), 'secret'), $d['signature']);
        $this->assertSame('k1', $d['key_id']);
        $this->assertInstanceOf(ObjectId::class, $d['seq']);
        $this->assertEquals(new UTCDateTime(Timestamp::toMillis($delayed->get('not_before'))), $d['run_at']);
        $this->assertEquals(new UTCDateTime(1893452400123), $d['expires_at'], 'fractions below a millisecond are dropped');
        $this->assertInstanceOf(UTCDateTime::class, $d['enqueued_at']);
        $this->assertEquals($d['enqueued_at'], $d['updated_at']);

        $this->assertSame(self::documentFields(), array_keys($p));
        $this->assertNull($p['expires_at']);
        $this->assertSame(hash_hmac('sha256', $plain->toJson(), 'secret'), $p['signature']);
        $this->assertEquals($p['enqueued_at'], $p['run_at'], 'ready now: run_at is the insert time');
        $ms = (int) (string) $p['run_at'];
        $this->assertTrue($ms >= $before && $ms <= $after);
        $this->assertTrue($d['seq'] < $p['seq'], 'seq follows enqueue order');
    }

    public function testPushingTheSameBytesAgainIsARetryNotADuplicate(): void
    {
        // Given a task already stored (an earlier try whose reply was lost)
        $queue = $this->backend->open();
        $task = Task::factory(['queue' => $this->backend->queue, 'lang' => 'shell', 'file' => 'x.sh']);
        $queue->push($task);

        // When a batch holding the same task is pushed
        $next = Task::factory(['queue' => $this->backend->queue, 'lang' => 'shell', 'file' => 'y.sh']);
        $this->assertSame([$task->id(), $next->id()], $queue->pushMany([$task, $next]));

        // Then it counts as enqueued and the batch goes on
        $this->assertSame([$task->id(), $next->id()], array_column($this->backend->stored(), 'id'));
    }

    public function testADifferentTaskWithAHeldIdStopsTheBatchThere(): void
    {
        $queue = $this->backend->open();
        $held = $queue->push(['queue' => $this->backend->queue, 'lang' => 'shell', 'file' => 'x.sh']);
        $before = Task::factory(['queue' => $this->backend->queue, 'lang' => 'shell', 'file' => 'a.sh']);
        $clash = Task::factory(['id' => $held, 'queue' => $this->backend->queue, 'lang' => 'shell', 'file' => 'other.sh']);
        $after = Task::factory(['queue' => $this->backend->queue, 'lang' => 'shell', 'file' => 'b.sh']);
        try {
            $queue->pushMany([$before, $clash, $after]);
            $this->fail('a different task with a held id was accepted');
        } catch (DuplicateTask $e) {
            $this->assertSame($held, $e->taskId);
        }
        // an ordered insert: what came before the duplicate is stored, nothing after it
        $this->assertSame([$held, $before->id()], array_column($this->backend->stored(), 'id'));
    }

    public function testTheCollectionComesFromTheUrlOrTheOptions(): void
    {
        $url = $this->backend->url . (str_contains($this->backend->url, '?') ? '&' : '?') . 'collection=jobs';
        $queue = new MongoQueue(['url' => $url]);
        $this->assertSame('jobs', $queue->collection);
        $id = $queue->push(['lang' => 'shell', 'file' => 'x.sh']);
        $found = $this->backend->mongo()->executeQuery($this->backend->mongoDatabase() . '.jobs', new Query(['_id' => $id]))->toArray();
        $this->assertCount(1, $found);
        $this->assertSame('tasks2', (new MongoQueue(['url' => $url, 'collection' => 'tasks2']))->collection);
    }

    public function testUrls(): void
    {
        $this->assertSame(['mongodb://h1:27017,h2/app?replicaSet=rs0&tls=true', 'app', 'jobs'],
            MongoQueue::parseUrl('mongodb://h1:27017,h2/app?replicaSet=rs0&collection=jobs&tls=true'));
        $this->assertSame(['mongodb+srv://u:p@cluster.example.net/app', 'app', null], MongoQueue::parseUrl('mongodb+srv://u:p@cluster.example.net/app'));
        foreach (['mongodb://h/', 'mongodb://h', 'mongodb://h/a.b', 'mongodb://h/?collection=x', 'postgres://h/db'] as $url) {
            try {
                MongoQueue::parseUrl($url);
                $this->fail("accepted $url");
            } catch (ConfigError) {
                $this->addToAssertionCount(1);
            }
        }
    }

    /** @return list<string> the fields of the normative producer document, in order */
    private static function documentFields(): array
    {
        $doc = (string) file_get_contents(Repo::spec('backends/mongodb.md'));
        self::assertSame(1, preg_match('/<!-- phlask:producer-document -->\s*```json\n(.*?)^```/ms', $doc, $m));
        return array_keys(json_decode($m[1], true, 512, JSON_THROW_ON_ERROR));
    }

    /** @return list<array<string, mixed>> */
    private function documents(): array
    {
        $cursor = $this->backend->mongo()->executeQuery($this->backend->mongoDatabase() . '.phlask_tasks', new Query([], ['sort' => ['seq' => 1]]));
        $cursor->setTypeMap(['root' => 'array', 'document' => 'array', 'array' => 'array']);
        return $cursor->toArray();
    }
}
