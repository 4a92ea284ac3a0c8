<?php

declare(strict_types=1);

namespace Phlask\Tests\Support;

use MongoDB\Driver\Command;
use MongoDB\Driver\Manager;
use PhpAmqpLib\Channel\AMQPChannel;
use PhpAmqpLib\Connection\AbstractConnection;
use PhpAmqpLib\Connection\AMQPConnectionConfig;
use PhpAmqpLib\Connection\AMQPConnectionFactory;
use Phlask\MongoQueue;
use Phlask\Queue;
use Phlask\RabbitQueue;
use PHPUnit\Framework\Assert;
use PHPUnit\Framework\SkippedTestError;

/**
 * One real backend, isolated for one test: its own SQLite file, MongoDB database
 * (`phlask_sdk_php_<random>`, dropped afterwards) or RabbitMQ queue names
 * (`sdk-php-<random>`, deleted afterwards). A missing server skips the test, except with
 * CI=true, where it fails.
 */
final class Backend
{
    public const NAMES = ['sqlite', 'mongodb', 'rabbitmq'];

    public readonly string $url;
    /** A phlask queue name of this test's own. */
    public readonly string $queue;
    private readonly string $dir;
    private ?Manager $mongo = null;
    private ?AbstractConnection $amqp = null;
    /** @var list<string> RabbitMQ queues to delete afterwards */
    private array $amqpQueues = [];
    /** @var list<Queue> */
    private array $opened = [];

    public function __construct(public readonly string $name)
    {
        $random = bin2hex(random_bytes(5));
        $this->queue = 'sdk-php-' . $random;
        $this->dir = sys_get_temp_dir() . '/phlask-sdk-php-' . $random;
        mkdir($this->dir, 0700, true);
        $this->url = match ($name) {
            'sqlite' => 'sqlite://' . $this->dir . '/queue.db',
            'mongodb' => self::mongoUrl('phlask_sdk_php_' . $random),
            'rabbitmq' => self::env('AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672/%2F'),
        };
        $this->ensureServer();
    }

    /** @return iterable<string, array{string}> a data set per backend */
    public static function provider(): iterable
    {
        foreach (self::NAMES as $name) {
            yield $name => [$name];
        }
    }

    /** @param array<string, mixed> $options */
    public function open(array $options = []): Queue
    {
        return $this->opened[] = Queue::connect($this->url, $options);
    }

    /** A directory of this test's own, removed afterwards. */
    public function dir(): string
    {
        return $this->dir;
    }

    /** Extra `phlask run` / `phlask inspect` arguments: RabbitMQ cannot look tasks up, so results go to SQLite. */
    public function resultsArgs(): array
    {
        return $this->name === 'rabbitmq' ? ['--results', 'sqlite://' . $this->dir . '/results.db'] : [];
    }

    public function mongo(): Manager
    {
        return $this->mongo ??= new Manager($this->url, ['serverSelectionTimeoutMS' => 3000]);
    }

    public function mongoDatabase(): string
    {
        return MongoQueue::parseUrl($this->url)[1];
    }

    public function amqp(): AMQPChannel
    {
        if ($this->amqp === null) {
            [$parts] = RabbitQueue::parseUrl($this->url);
            $config = new AMQPConnectionConfig();
            $config->setHost($parts['host']);
            $config->setPort((int) ($parts['port'] ?? 5672));
            $config->setUser($parts['user'] ?? 'guest');
            $config->setPassword($parts['password'] ?? 'guest');
            $config->setVhost($parts['vhost']);
            $this->amqp = AMQPConnectionFactory::create($config);
        }
        return $this->amqp->channel();
    }

    /**
     * Every task of this test's queue as the backend holds it, in enqueue order. Reading
     * RabbitMQ takes the messages off their queues (work queue and $amqpQueues).
     *
     * @param list<string> $amqpQueues further RabbitMQ queues to read (delay queues)
     * @return list<array{id: string, body: string, signature: ?string, key_id: ?string, where: string}>
     */
    public function stored(array $amqpQueues = []): array
    {
        $out = [];
        if ($this->name === 'sqlite') {
            $db = new \PDO('sqlite:' . $this->dir . '/queue.db');
            $rows = $db->prepare('SELECT id, body, signature, key_id, queue FROM phlask_tasks WHERE queue = ? ORDER BY seq');
            $rows->execute([$this->queue]);
            foreach ($rows->fetchAll(\PDO::FETCH_ASSOC) as $r) {
                $out[] = ['id' => $r['id'], 'body' => $r['body'], 'signature' => $r['signature'], 'key_id' => $r['key_id'], 'where' => $r['queue']];
            }
        } elseif ($this->name === 'mongodb') {
            $query = new \MongoDB\Driver\Query(['queue' => $this->queue], ['sort' => ['seq' => 1]]);
            foreach ($this->mongo()->executeQuery($this->mongoDatabase() . '.phlask_tasks', $query) as $d) {
                $out[] = ['id' => $d->_id, 'body' => $d->body->getData(), 'signature' => $d->signature, 'key_id' => $d->key_id, 'where' => $d->queue];
            }
        } else {
            $channel = $this->amqp();
            foreach (array_merge(['phlask.' . $this->queue], $amqpQueues) as $name) {
                $this->forget($name);
                try {
                    while (($m = $channel->basic_get($name, true)) !== null) {
                        $headers = $m->has('application_headers') ? $m->get('application_headers')->getNativeData() : [];
                        $out[] = ['id' => $m->get('message_id'), 'body' => $m->getBody(), 'signature' => $headers['x-phlask-signature'] ?? null,
                            'key_id' => $headers['x-phlask-key-id'] ?? null, 'where' => $name];
                    }
                } catch (\PhpAmqpLib\Exception\AMQPProtocolChannelException $e) {
                    if ($e->getCode() !== 404) {
                        throw $e;
                    }
                    $channel = $this->amqp(); // no such queue: nothing was published there
                }
            }
            $channel->close();
        }
        return $out;
    }

    /** Delete this RabbitMQ queue when the test ends. */
    public function forget(string $amqpQueue): void
    {
        $this->amqpQueues[] = $amqpQueue;
    }

    public function cleanup(): void
    {
        foreach ($this->opened as $queue) {
            $queue->close();
        }
        if ($this->name === 'mongodb') {
            try {
                $this->mongo()->executeCommand($this->mongoDatabase(), new Command(['dropDatabase' => 1]));
            } catch (\Throwable) {
                // the server went away: nothing to drop
            }
        }
        if ($this->name === 'rabbitmq') {
            try {
                $channel = $this->amqp();
                foreach (array_unique(array_merge($this->amqpQueues, ['phlask.' . $this->queue, 'phlask.' . $this->queue . ':dead'])) as $name) {
                    $channel->queue_delete($name);
                }
                $this->amqp?->close();
            } catch (\Throwable) {
                // the server went away: nothing to delete
            }
        }
        self::remove($this->dir);
    }

    private function ensureServer(): void
    {
        $problem = match ($this->name) {
            'sqlite' => null,
            'mongodb' => self::probe(function (): void {
                $this->mongo()->executeCommand('admin', new Command(['ping' => 1]));
            }),
            'rabbitmq' => self::probe(function (): void {
                $this->amqp()->close();
            }),
        };
        if ($problem === null) {
            return;
        }
        self::remove($this->dir);
        $message = "{$this->name} is not reachable at {$this->url} ($problem); start it with `bash scripts/services start all`";
        if (getenv('CI') === 'true') {
            Assert::fail($message);
        }
        throw new SkippedTestError($message);
    }

    private static function probe(callable $fn): ?string
    {
        try {
            $fn();
            return null;
        } catch (\Throwable $e) {
            return $e->getMessage();
        }
    }

    private static function mongoUrl(string $database): string
    {
        $base = self::env('MONGODB_URL', 'mongodb://127.0.0.1:27017/phlask_test');
        if (!preg_match('~^(mongodb(?:\+srv)?://[^/?#]*)(?:/[^?#]*)?(\?[^#]*)?$~D', $base, $m)) {
            Assert::fail("MONGODB_URL $base is not a mongodb URL");
        }
        return $m[1] . '/' . $database . ($m[2] ?? '');
    }

    private static function env(string $name, string $default): string
    {
        $value = getenv($name);
        return $value === false || $value === '' ? $default : $value;
    }

    private static function remove(string $path): void
    {
        if (is_dir($path) && !is_link($path)) {
            foreach (scandir($path) ?: [] as $entry) {
                if ($entry !== '.' && $entry !== '..') {
                    self::remove($path . '/' . $entry);
                }
            }
            @rmdir($path);
        } elseif (file_exists($path) || is_link($path)) {
            @unlink($path);
        }
    }
}
