<?php

declare(strict_types=1);

namespace Phlask\Tests;

use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;
use Phlask\Exception\BackendError;
use Phlask\Exception\ConfigError;
use Phlask\RabbitQueue;
use Phlask\Task;
use Phlask\Timestamp;
use Phlask\Tests\Support\Backend;
use Phlask\Tests\Support\Repo;
use PHPUnit\Framework\TestCase;

/** The messages and queues of spec/backends/rabbitmq.md, read back from the server. */
final class RabbitQueueTest extends TestCase
{
    private ?Backend $backend = null;

    protected function tearDown(): void
    {
        $this->backend?->cleanup();
    }

    /** The normative block of section 13 is what this SDK uses (no server needed). */
    public function testConstantsAreTheNormativeBlock(): void
    {
        $n = self::normative();
        $q = new RabbitQueue(['url' => 'amqp://guest:guest@127.0.0.1:5672/%2F']);
        $this->assertSame(1, $n->{'phlask:rabbitmq'});
        $this->assertSame($n->exchange, '');
        $this->assertSame($n->content_type, RabbitQueue::CONTENT_TYPE);
        $this->assertSame($n->delivery_mode, RabbitQueue::DELIVERY_MODE);
        $this->assertSame($n->max_delay_ms, RabbitQueue::MAX_DELAY_MS);
        $this->assertSame(str_replace('{queue}', 'reports', $n->names->work), $q->workQueue('reports'));
        $this->assertSame(strtr($n->names->delay, ['{queue}' => 'reports', '{ttl}' => '45000']), $q->delayQueue('reports', 45000));
        $this->assertSame(str_replace('{queue}', 'reports', $n->names->dead), $q->deadQueue('reports'));
        $this->assertSame((array) $n->arguments->work, RabbitQueue::workArguments());
        $delay = (array) $n->arguments->delay;
        $this->assertSame(['x-message-ttl' => '{ttl}', 'x-expires' => '{ttl} + 600000'], array_intersect_key($delay, ['x-message-ttl' => 0, 'x-expires' => 0]));
        $delay = ['x-message-ttl' => 45000, 'x-expires' => 45000 + RabbitQueue::DELAY_EXPIRES_EXTRA_MS] + $delay;
        $delay['x-dead-letter-routing-key'] = str_replace('{queue}', 'reports', $delay['x-dead-letter-routing-key']);
        $expected = RabbitQueue::delayArguments('phlask.reports', 45000);
        ksort($delay);
        ksort($expected);
        $this->assertSame($delay, $expected);
        $this->assertSame(
            [$n->headers->signature, $n->headers->key_id, $n->headers->not_before],
            [RabbitQueue::HEADER_SIGNATURE, RabbitQueue::HEADER_KEY_ID, RabbitQueue::HEADER_NOT_BEFORE],
        );
        foreach ($n->delay_examples as [$d, $bucket]) {
            $this->assertSame($bucket, RabbitQueue::bucket($d), "bucket($d)");
        }
    }

    public function testUrls(): void
    {
        $this->assertSame(
            [['secure' => false, 'host' => 'mq', 'vhost' => '/', 'port' => 5673, 'user' => 'app', 'password' => 'p@ss/w'], ['prefix' => 'x.', 'connect_timeout' => '2']],
            RabbitQueue::parseUrl('amqp://app:p%40ss%2Fw@mq:5673/%2F?prefix=x.&connect_timeout=2'),
        );
        $this->assertSame(['secure' => true, 'host' => 'mq', 'vhost' => 'jobs'], RabbitQueue::parseUrl('amqps://mq/jobs')[0]);
        $this->assertSame('/', RabbitQueue::parseUrl('amqp://mq')[0]['vhost']);
        $this->assertSame('x.', (new RabbitQueue(['url' => 'amqp://mq/?prefix=x.']))->prefix);
        foreach (['http://mq/', 'amqp:///vhost', 'amqp://'] as $url) {
            try {
                new RabbitQueue(['url' => $url]);
                $this->fail("accepted $url");
            } catch (ConfigError) {
                $this->addToAssertionCount(1);
            }
        }
        $this->expectException(ConfigError::class);
        new RabbitQueue(['url' => 'amqp://mq/', 'prefix' => 'bad prefix']);
    }

    public function testAMessageCarriesTheEnvelopeAndTheProperties(): void
    {
        // Given a signing queue and a task of priority 7
        $backend = $this->backend = new Backend('rabbitmq');
        $task = Task::factory(['queue' => $backend->queue, 'lang' => 'php', 'file' => 'r.php', 'priority' => 7,
            'not_before' => '2020-01-01T00:00:00Z']);

        // When it is pushed (its not_before has passed)
        $before = time();
        $backend->open(['signing_key' => ['k.2026-11', 'secret']])->push($task);

        // Then the work queue holds it, with the properties and headers of section 5
        $m = $this->take('phlask.' . $backend->queue);
        $this->assertSame($task->toJson(), $m->getBody());
        $this->assertSame([2, $task->id(), 'application/json', 7], [$m->get('delivery_mode'), $m->get('message_id'), $m->get('content_type'), $m->get('priority')]);
        $this->assertGreaterThanOrEqual($before, $m->get('timestamp'));
        $this->assertLessThanOrEqual(time(), $m->get('timestamp'));
        $this->assertFalse($m->has('expiration'), 'producers never set expiration');
        $this->assertSame(
            ['x-phlask-signature' => hash_hmac('sha256', $task->toJson(), 'secret'), 'x-phlask-key-id' => 'k.2026-11'],
            $m->get('application_headers')->getNativeData(),
        );
        // and the work queue was declared with exactly the arguments of section 4
        $this->assertRedeclares('phlask.' . $backend->queue, RabbitQueue::workArguments());
    }

    public function testADelayedTaskGoesToItsDelayQueue(): void
    {
        // Given a task due in 45.5 s
        $backend = $this->backend = new Backend('rabbitmq');
        $task = Task::factory(['queue' => $backend->queue, 'lang' => 'shell', 'file' => 'x.sh', 'delay' => 45.5]);
        $due = Timestamp::toMillis($task->get('not_before'));

        // When it is pushed
        $backend->open()->push($task);

        // Then it waits in the delay queue of its bucket, with its due time in a header
        $ttl = 45000;
        $delayQueue = 'phlask.' . $backend->queue . ':delay:' . $ttl;
        $backend->forget($delayQueue);
        $m = $this->take($delayQueue);
        $this->assertSame($task->id(), $m->get('message_id'));
        $this->assertSame([RabbitQueue::HEADER_NOT_BEFORE => $due], $m->get('application_headers')->getNativeData());
        $this->assertRedeclares($delayQueue, RabbitQueue::delayArguments('phlask.' . $backend->queue, $ttl));
        $this->assertRedeclares('phlask.' . $backend->queue, RabbitQueue::workArguments());
    }

    public function testAWorkQueueDeclaredOtherwiseIsReportedNotIgnored(): void
    {
        $backend = $this->backend = new Backend('rabbitmq');
        $channel = $backend->amqp();
        $channel->queue_declare('phlask.' . $backend->queue, false, true, false, false);
        $channel->close();
        try {
            $backend->open()->push(['queue' => $backend->queue, 'lang' => 'shell', 'file' => 'x.sh']);
            $this->fail('a queue with other arguments was used');
        } catch (BackendError $e) {
            $this->assertStringContainsString('other arguments', $e->getMessage());
        }
    }

    public function testThePrefixOptionRenamesEveryQueue(): void
    {
        $backend = $this->backend = new Backend('rabbitmq');
        $prefix = 'sdkphp' . bin2hex(random_bytes(3)) . '.';
        $queue = $backend->open(['prefix' => $prefix]);
        $id = $queue->push(['queue' => 'default', 'lang' => 'shell', 'file' => 'x.sh']);
        $backend->forget($prefix . 'default');
        $this->assertSame($id, $this->take($prefix . 'default')->get('message_id'));
    }

    public function testALostConnectionIsReopenedOnTheNextPush(): void
    {
        // Given a queue whose connection has gone away since its last push
        $backend = $this->backend = new Backend('rabbitmq');
        $queue = $backend->open();
        $first = $queue->push(['queue' => $backend->queue, 'lang' => 'shell', 'file' => 'x.sh']);
        $connection = (new \ReflectionProperty(RabbitQueue::class, 'connection'))->getValue($queue);
        $connection->close();

        // When it pushes again, Then it reconnects and both tasks are stored
        $second = $queue->push(['queue' => $backend->queue, 'lang' => 'shell', 'file' => 'x.sh']);
        $this->assertSame([$first, $second], array_column($backend->stored(), 'id'));
    }

    private function take(string $queue): AMQPMessage
    {
        $channel = $this->backend->amqp();
        $m = $channel->basic_get($queue, true);
        $this->assertNotNull($m, "no message in $queue");
        $channel->close();
        return $m;
    }

    /**
     * Declaring a queue again with other arguments fails (406), so a redeclaration with
     * these arguments proves the queue has exactly them.
     *
     * @param array<string, mixed> $arguments
     */
    private function assertRedeclares(string $queue, array $arguments): void
    {
        $channel = $this->backend->amqp();
        try {
            $channel->queue_declare($queue, false, true, false, false, false, new AMQPTable($arguments));
            $this->addToAssertionCount(1);
            $channel->close();
        } catch (AMQPProtocolChannelException $e) {
            $this->fail("$queue has other arguments than " . json_encode($arguments) . ': ' . $e->getMessage());
        }
    }

    private static function normative(): \stdClass
    {
        $doc = (string) file_get_contents(Repo::spec('backends/rabbitmq.md'));
        self::assertSame(1, preg_match('/^```json\n(\{\s*"phlask:rabbitmq".*?)^```/ms', $doc, $m), 'the normative block of rabbitmq.md');
        return json_decode($m[1], false, 512, JSON_THROW_ON_ERROR);
    }
}
