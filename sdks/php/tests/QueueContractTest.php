<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\Exception\DuplicateTask;
use Phlask\Exception\InvalidTask;
use Phlask\Exception\Unreachable;
use Phlask\Queue;
use Phlask\SigningKey;
use Phlask\Task;
use Phlask\Tests\Support\Backend;
use PHPUnit\Framework\TestCase;

/** What every queue does, on every real backend (one suite, parametrised over backends). */
final class QueueContractTest extends TestCase
{
    private ?Backend $backend = null;

    protected function tearDown(): void
    {
        $this->backend?->cleanup();
    }

    /** @dataProvider \Phlask\Tests\Support\Backend::provider */
    public function testPushStoresTheExactBytesSignedBeside(string $name): void
    {
        // Given a queue with a signing key
        $backend = $this->backend = new Backend($name);
        $key = new SigningKey('k.2026-11', 'clé secrète');
        $queue = $backend->open(['signing_key' => $key]);
        $tasks = [$this->task($backend, ['args' => ['Zoë']]), $this->task($backend), $this->task($backend, ['priority' => 7])];

        // When one is pushed and two in a batch
        $first = $queue->push($tasks[0]);
        $rest = $queue->pushMany([$tasks[1], $tasks[2]]);

        // Then the ids come back in order and the backend holds each envelope's exact bytes and signature
        $this->assertSame([$tasks[0]->id(), $tasks[1]->id(), $tasks[2]->id()], [$first, ...$rest]);
        $stored = $this->byId($backend->stored());
        $this->assertCount(3, $stored);
        foreach ($tasks as $task) {
            $row = $stored[$task->id()];
            $this->assertSame($task->toJson(), $row['body']);
            $this->assertSame('k.2026-11', $row['key_id']);
            $this->assertSame(hash_hmac('sha256', $task->toJson(), 'clé secrète'), $row['signature']);
        }
    }

    /** @dataProvider \Phlask\Tests\Support\Backend::provider */
    public function testUnsignedTasksCarryNoSignature(string $name): void
    {
        $backend = $this->backend = new Backend($name);
        $id = $backend->open()->push(['queue' => $backend->queue, 'lang' => 'shell', 'file' => 'x.sh']);
        $row = $this->byId($backend->stored())[$id];
        $this->assertNull($row['signature']);
        $this->assertNull($row['key_id']);
    }

    /** @dataProvider \Phlask\Tests\Support\Backend::provider */
    public function testABatchWithAnInvalidTaskEnqueuesNothing(string $name): void
    {
        $backend = $this->backend = new Backend($name);
        $queue = $backend->open();
        try {
            $queue->pushMany([$this->task($backend), $this->task($backend, ['priority' => 10])]);
            $this->fail('an invalid batch was accepted');
        } catch (InvalidTask $e) {
            $this->assertSame(['$.priority'], $e->paths());
            $this->assertStringContainsString('index 1', $e->getMessage());
        }
        $this->assertSame([], $backend->stored());
    }

    /** @dataProvider \Phlask\Tests\Support\Backend::provider */
    public function testABatchRepeatingAnIdEnqueuesNothing(string $name): void
    {
        $backend = $this->backend = new Backend($name);
        $queue = $backend->open();
        $task = $this->task($backend);
        try {
            $queue->pushMany([$this->task($backend), $task, $this->task($backend, ['id' => $task->id()])]);
            $this->fail('a repeated id was accepted');
        } catch (DuplicateTask $e) {
            $this->assertSame($task->id(), $e->taskId);
            $this->assertSame('duplicate_id', $e->errorCode());
        }
        $this->assertSame([], $backend->stored());
    }

    /** @dataProvider \Phlask\Tests\Support\Backend::provider */
    public function testAnIdTheBackendHoldsIsRefusedWhereTheBackendCanTell(string $name): void
    {
        $backend = $this->backend = new Backend($name);
        $queue = $backend->open();
        $id = $queue->push($this->task($backend));
        $again = $this->task($backend, ['id' => $id, 'args' => ['other']]);
        if ($name === 'rabbitmq') {
            // RabbitMQ keeps no index of ids (spec/backends/rabbitmq.md, section 6): both are stored
            $queue->push($again);
            $this->assertCount(2, $backend->stored());
            return;
        }
        try {
            $queue->push($again);
            $this->fail('a held id was accepted');
        } catch (DuplicateTask $e) {
            $this->assertSame($id, $e->taskId);
            $this->assertStringContainsString($id, $e->getMessage());
        }
        $this->assertCount(1, $backend->stored());
    }

    /** @dataProvider \Phlask\Tests\Support\Backend::provider */
    public function testAnUnreachableBackendNamesItsUrl(string $name): void
    {
        $backend = $this->backend = new Backend($name);
        [$url, $options] = match ($name) {
            'sqlite' => ['sqlite:///dev/null/phlask/queue.db', []],
            'mongodb' => ['mongodb://app:s3cret@127.0.0.1:1/phlask_sdk_php_nowhere', ['retry_for' => 0.3]],
            'rabbitmq' => ['amqp://app:s3cret@127.0.0.1:1/%2F', ['connect_timeout' => 0.3]],
        };
        try {
            Queue::connect($url, $options)->push($this->task($backend));
            $this->fail('no error for an unreachable backend');
        } catch (Unreachable $e) {
            $this->assertSame(Unreachable::redact($url), $e->url);
            $this->assertStringStartsWith('cannot reach ' . $e->url . ': ', $e->getMessage());
            $this->assertStringNotContainsString('s3cret', $e->getMessage());
            $this->assertSame('broker_unavailable', $e->errorCode());
        }
    }

    public function testAnUnknownSchemeIsAConfigError(): void
    {
        $this->expectException(\Phlask\Exception\ConfigError::class);
        $this->expectExceptionMessage('queue URL redis://:***@cache:6379/0: unknown scheme "redis"');
        Queue::connect('redis://:hunter2@cache:6379/0');
    }

    /** @param array<string, mixed> $options */
    private function task(Backend $backend, array $options = []): Task
    {
        return Task::factory($options + ['queue' => $backend->queue, 'lang' => 'shell', 'file' => 'jobs/hello.sh']);
    }

    /**
     * @param list<array{id: string}> $rows
     * @return array<string, array<string, mixed>>
     */
    private function byId(array $rows): array
    {
        return array_column($rows, null, 'id');
    }
}
