<?php

declare(strict_types=1);

namespace Phlask;

use PhpAmqpLib\Channel\AMQPChannel;
use PhpAmqpLib\Connection\AbstractConnection;
use PhpAmqpLib\Connection\AMQPConnectionConfig;
use PhpAmqpLib\Connection\AMQPConnectionFactory;
use PhpAmqpLib\Exception\AMQPConnectionClosedException;
use PhpAmqpLib\Exception\AMQPExceptionInterface;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;
use Phlask\Exception\BackendError;
use Phlask\Exception\ConfigError;
use Phlask\Exception\Unreachable;

/**
 * The RabbitMQ backend (spec/backends/rabbitmq.md), with php-amqplib: one durable priority
 * queue `phlask.<queue>` per phlask queue, delay queues for `not_before`, publisher
 * confirms for every publish.
 *
 *     $queue = Queue::connect('amqp://guest:guest@127.0.0.1:5672/%2F');
 *     $queue = new RabbitQueue(['host' => 'mq1', 'user' => 'app', 'password' => '...', 'vhost' => 'jobs']);
 *
 * Options: `url` (`amqp://user:password@host:5672/vhost`, vhost percent-encoded, `%2F` for
 * `/`; `amqps://` for TLS; query options `prefix` and `connect_timeout`), or `host`,
 * `port`, `user`, `password`, `vhost`, `secure`; `prefix` (replaces `phlask.` in every
 * name), `connect_timeout` (seconds to keep trying to connect, default 15),
 * `confirm_timeout` (seconds to wait for the server's confirms, default 30), `ssl`
 * (['ca_cert' => ..., 'cert' => ..., 'key' => ..., 'verify' => true, 'verify_name' => true]),
 * `signing_key`. The connection is opened on the first push.
 *
 * RabbitMQ keeps no index of ids: a batch that repeats an id is refused, but an id used by
 * an earlier push is enqueued again.
 */
final class RabbitQueue extends Queue
{
    public const DEFAULT_PREFIX = 'phlask.';
    public const CONTENT_TYPE = 'application/json';
    public const DELIVERY_MODE = 2;
    public const MAX_PRIORITY = 10;
    public const MAX_DELAY_MS = 86400000;
    public const DELAY_EXPIRES_EXTRA_MS = 600000;
    public const HEADER_SIGNATURE = 'x-phlask-signature';
    public const HEADER_KEY_ID = 'x-phlask-key-id';
    public const HEADER_NOT_BEFORE = 'x-phlask-not-before';

    public readonly string $url;
    public readonly string $prefix;
    private readonly AMQPConnectionConfig $config;
    private readonly float $connectTimeout;
    private readonly float $confirmTimeout;
    private ?AbstractConnection $connection = null;
    private ?AMQPChannel $channel = null;
    /** @var array<string, true> work queues declared on this connection */
    private array $declared = [];
    /** @var array<string, string> message id => what happened: `ack`, `nack` or the return's reason */
    private array $confirmed = [];

    /**
     * @param array<string, mixed> $options
     * @throws ConfigError
     */
    public function __construct(array $options)
    {
        self::checkOptions(self::class, $options, [
            'url', 'host', 'port', 'user', 'password', 'vhost', 'secure', 'prefix', 'connect_timeout', 'confirm_timeout', 'ssl',
        ]);
        $this->signingKey = SigningKey::from($options['signing_key'] ?? null);
        $query = [];
        if (isset($options['url'])) {
            foreach (['host', 'port', 'user', 'password', 'vhost', 'secure'] as $name) {
                if (isset($options[$name])) {
                    throw new ConfigError("RabbitQueue: give 'url' or '$name' and the other parts, not both");
                }
            }
            $this->url = (string) $options['url'];
            [$parts, $query] = self::parseUrl($this->url);
            $options += $parts;
        }
        $secure = (bool) ($options['secure'] ?? false);
        $host = (string) ($options['host'] ?? '127.0.0.1');
        $port = (int) ($options['port'] ?? ($secure ? 5671 : 5672));
        $user = (string) ($options['user'] ?? 'guest');
        $vhost = (string) ($options['vhost'] ?? '/');
        $this->url ??= sprintf('%s://%s@%s:%d/%s', $secure ? 'amqps' : 'amqp', rawurlencode($user), $host, $port, rawurlencode($vhost));

        $this->prefix = (string) ($options['prefix'] ?? $query['prefix'] ?? self::DEFAULT_PREFIX);
        if (!preg_match('/^[A-Za-z0-9._:-]{0,100}$/D', $this->prefix)) {
            throw new ConfigError(sprintf('RabbitQueue: prefix %s may hold only letters, digits and . _ : - (at most 100)', json_encode($this->prefix)));
        }
        $this->connectTimeout = self::seconds($options['connect_timeout'] ?? $query['connect_timeout'] ?? 15, 'connect_timeout');
        $this->confirmTimeout = self::seconds($options['confirm_timeout'] ?? 30, 'confirm_timeout');

        $config = new AMQPConnectionConfig();
        $config->setHost($host);
        $config->setPort($port);
        $config->setUser($user);
        $config->setPassword((string) ($options['password'] ?? 'guest'));
        $config->setVhost($vhost);
        $config->setIsSecure($secure);
        $config->setConnectionTimeout(max(0.1, min($this->connectTimeout, 10.0)));
        $config->setReadTimeout(max(3.0, $this->confirmTimeout));
        $config->setWriteTimeout(max(3.0, $this->confirmTimeout));
        $config->setConnectionName('phlask-php');
        foreach ((array) ($options['ssl'] ?? []) as $name => $value) {
            match ($name) {
                'ca_cert' => $config->setSslCaCert((string) $value),
                'ca_path' => $config->setSslCaPath((string) $value),
                'cert' => $config->setSslCert((string) $value),
                'key' => $config->setSslKey((string) $value),
                'passphrase' => $config->setSslPassPhrase((string) $value),
                'verify' => $config->setSslVerify((bool) $value),
                'verify_name' => $config->setSslVerifyName((bool) $value),
                default => throw new ConfigError("RabbitQueue: unknown ssl option $name (ca_cert, ca_path, cert, key, passphrase, verify, verify_name)"),
            };
        }
        $this->config = $config;
    }

    /**
     * The parts of an `amqp://` URL, and its query options.
     *
     * @return array{array<string, mixed>, array<string, string>}
     * @throws ConfigError
     */
    public static function parseUrl(string $url): array
    {
        $shown = json_encode(Unreachable::redact($url), JSON_UNESCAPED_SLASHES);
        $p = parse_url($url);
        $scheme = strtolower((string) ($p['scheme'] ?? ''));
        if ($p === false || !in_array($scheme, ['amqp', 'amqps'], true) || ($p['host'] ?? '') === '') {
            throw new ConfigError("queue URL $shown: write amqp://user:pass@host:5672/vhost (the vhost percent-encoded: %2F for /)");
        }
        $path = $p['path'] ?? '';
        $parts = [
            'secure' => $scheme === 'amqps',
            'host' => trim($p['host'], '[]'),
            'vhost' => $path === '' || $path === '/' ? '/' : rawurldecode(substr($path, 1)),
        ];
        foreach (['port' => 'port', 'user' => 'user', 'pass' => 'password'] as $from => $to) {
            if (isset($p[$from])) {
                $parts[$to] = is_string($p[$from]) ? rawurldecode($p[$from]) : $p[$from];
            }
        }
        parse_str($p['query'] ?? '', $query);
        return [$parts, array_map('strval', array_filter($query, 'is_string'))];
    }

    /**
     * The delay queue's TTL for a task due in $remainingMs: the delay rounded down to two
     * significant digits, at most one day (spec section 7.1). Never longer than the delay.
     */
    public static function bucket(int $remainingMs): int
    {
        $ms = max($remainingMs, 1);
        if ($ms >= 100) {
            $scale = 10 ** (strlen((string) $ms) - 2);
            $ms = intdiv($ms, $scale) * $scale;
        }
        return min($ms, self::MAX_DELAY_MS);
    }

    /** The work queue of a phlask queue: `phlask.<queue>`. */
    public function workQueue(string $queue): string
    {
        return $this->prefix . $queue;
    }

    /** The delay queue of a phlask queue for one TTL: `phlask.<queue>:delay:<ttl>`. */
    public function delayQueue(string $queue, int $ttl): string
    {
        return $this->prefix . $queue . ':delay:' . $ttl;
    }

    /** The dead queue of a phlask queue: `phlask.<queue>:dead` (declared by runners). */
    public function deadQueue(string $queue): string
    {
        return $this->prefix . $queue . ':dead';
    }

    /** @return array<string, mixed> the work queue's arguments (spec section 4) */
    public static function workArguments(): array
    {
        return ['x-queue-type' => 'classic', 'x-max-priority' => self::MAX_PRIORITY];
    }

    /** @return array<string, mixed> a delay queue's arguments (spec section 4) */
    public static function delayArguments(string $workQueue, int $ttl): array
    {
        return [
            'x-queue-type' => 'classic',
            'x-message-ttl' => $ttl,
            'x-dead-letter-exchange' => '',
            'x-dead-letter-routing-key' => $workQueue,
            'x-expires' => $ttl + self::DELAY_EXPIRES_EXTRA_MS,
        ];
    }

    public function close(): void
    {
        $connection = $this->connection;
        $this->channel = null;
        $this->connection = null;
        $this->declared = [];
        if ($connection !== null) {
            try {
                $connection->close();
            } catch (\Throwable) {
                // already broken: nothing left to close cleanly
            }
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * Publish every message with publisher confirms, as one batch (spec section 6). A
     * connection lost before every confirm arrived is reopened and the unconfirmed messages
     * are published once more (a task may then be stored twice: at least once).
     */
    protected function write(array $messages): void
    {
        $done = [];
        for ($try = 1; ; $try++) {
            try {
                $this->publish($messages, $done);
                return;
            } catch (AMQPExceptionInterface|\ErrorException $e) {
                $this->close();
                if ($e instanceof AMQPProtocolChannelException || $e instanceof AMQPTimeoutException || $try === 2) {
                    throw self::failure($e, $this->url);
                }
                // The connection broke mid-batch: the server may hold some unconfirmed ones.
            }
        }
    }

    /**
     * @param non-empty-list<Message> $messages
     * @param array<string, true> $done ids the server confirmed, across tries
     */
    private function publish(array $messages, array &$done): void
    {
        $channel = $this->channel();
        $now = Timestamp::nowMillis();
        $plan = [];
        $delays = [];
        foreach ($messages as $m) {
            if (isset($done[$m->id])) {
                continue;
            }
            $work = $this->workQueue($m->queue);
            if (!isset($this->declared[$work])) { // work queues never expire: once per connection
                $this->declare($channel, $work, self::workArguments());
                $this->declared[$work] = true;
            }
            $headers = [];
            if ($m->signature !== null) {
                $headers[self::HEADER_SIGNATURE] = $m->signature;
                $headers[self::HEADER_KEY_ID] = $m->keyId;
            }
            $route = $work;
            if ($m->notBeforeMs !== null && $m->notBeforeMs > $now) {
                $ttl = self::bucket($m->notBeforeMs - $now);
                $route = $this->delayQueue($m->queue, $ttl);
                if (!isset($delays[$route])) { // before every batch that publishes to it: renews x-expires
                    $this->declare($channel, $route, self::delayArguments($work, $ttl));
                    $delays[$route] = true;
                }
                $headers[self::HEADER_NOT_BEFORE] = $m->notBeforeMs;
            }
            $properties = [
                'delivery_mode' => self::DELIVERY_MODE,
                'message_id' => $m->id,
                'content_type' => self::CONTENT_TYPE,
                'priority' => $m->priority,
                'timestamp' => intdiv($now, 1000),
            ];
            if ($headers !== []) {
                $properties['application_headers'] = new AMQPTable($headers);
            }
            $plan[] = [$route, new AMQPMessage($m->body, $properties), $m->id];
        }
        $this->confirmed = [];
        foreach ($plan as [$route, $message]) {
            $channel->basic_publish($message, '', $route, true);
        }
        $channel->wait_for_pending_acks_returns($this->confirmTimeout);

        $refused = [];
        foreach ($plan as [$route, , $id]) {
            $outcome = $this->confirmed[$id] ?? 'no confirm';
            if ($outcome === 'ack') {
                $done[$id] = true;
            } else {
                $refused[] = sprintf('%s to %s: %s', $id, $route, $outcome);
            }
        }
        if ($refused !== []) {
            throw new BackendError(sprintf(
                'RabbitMQ at %s refused %d message(s) (the others were enqueued): %s',
                Unreachable::redact($this->url),
                count($refused),
                implode('; ', $refused),
            ));
        }
    }

    /** @param array<string, mixed> $arguments */
    private function declare(AMQPChannel $channel, string $name, array $arguments): void
    {
        $channel->queue_declare($name, false, true, false, false, false, new AMQPTable($arguments));
    }

    private function channel(): AMQPChannel
    {
        if ($this->channel !== null && $this->channel->is_open()) {
            return $this->channel;
        }
        if ($this->connection === null || !$this->connection->isConnected()) {
            $this->connection = $this->open();
            $this->declared = [];
        }
        $channel = $this->connection->channel();
        $channel->confirm_select();
        $channel->set_ack_handler(function (AMQPMessage $m): void {
            $this->confirmed[(string) $m->get('message_id')] ??= 'ack';
        });
        $channel->set_nack_handler(function (AMQPMessage $m): void {
            $this->confirmed[(string) $m->get('message_id')] = 'negatively acknowledged (an internal error of the server)';
        });
        // An unroutable mandatory message is returned, then acknowledged: the return wins.
        $channel->set_return_listener(function (int $code, string $text, string $exchange, string $routingKey, AMQPMessage $m): void {
            $this->confirmed[(string) $m->get('message_id')] = "returned as unroutable ($code $text): queue $routingKey is missing";
        });
        return $this->channel = $channel;
    }

    private function open(): AbstractConnection
    {
        $deadline = microtime(true) + $this->connectTimeout;
        $pause = 0.2;
        for ($attempt = 1; ; $attempt++) {
            try {
                return AMQPConnectionFactory::create($this->config);
            } catch (AMQPConnectionClosedException $e) {
                // The server answered and closed: a bad login or vhost will not get better.
                throw new Unreachable($this->url, 'the server refused the login or vhost: ' . $e->getMessage(), $e);
            } catch (AMQPExceptionInterface|\ErrorException $e) {
                $left = $deadline - microtime(true);
                if ($left <= 0) {
                    throw new Unreachable($this->url, sprintf('no connection after %d attempt(s) in %gs (%s)', $attempt, $this->connectTimeout, $e->getMessage()), $e);
                }
                usleep((int) (min($pause, $left) * 1e6));
                $pause = min($pause * 2, 5.0);
            }
        }
    }

    private static function failure(\Throwable $e, string $url): \Throwable
    {
        $shown = Unreachable::redact($url);
        if ($e instanceof AMQPProtocolChannelException && $e->getCode() === 406) {
            return new BackendError("RabbitMQ at $shown: a queue exists with other arguments ({$e->getMessage()}); every producer and runner must declare it as spec/backends/rabbitmq.md says", 0, $e);
        }
        if ($e instanceof AMQPTimeoutException) {
            return new BackendError("RabbitMQ at $shown did not confirm every message in time; some may be enqueued", 0, $e);
        }
        if ($e instanceof AMQPProtocolChannelException) {
            return new BackendError("RabbitMQ at $shown: {$e->getMessage()}", 0, $e);
        }
        return new Unreachable($url, 'connection lost while publishing, twice; some tasks may be enqueued: ' . $e->getMessage(), $e);
    }

    private static function seconds(mixed $value, string $name): float
    {
        if (!is_numeric($value) || (float) $value < 0) {
            throw new ConfigError("RabbitQueue: $name is seconds, a number >= 0");
        }
        return (float) $value;
    }
}
