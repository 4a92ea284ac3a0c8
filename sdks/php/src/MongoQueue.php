<?php

declare(strict_types=1);

namespace Phlask;

use MongoDB\BSON\Binary;
use MongoDB\BSON\ObjectId;
use MongoDB\BSON\UTCDateTime;
use MongoDB\Driver\BulkWrite;
use MongoDB\Driver\Exception\BulkWriteException;
use MongoDB\Driver\Exception\ConnectionException;
use MongoDB\Driver\Exception\Exception as DriverException;
use MongoDB\Driver\Exception\ServerException;
use MongoDB\Driver\Manager;
use MongoDB\Driver\Query;
use Phlask\Exception\BackendError;
use Phlask\Exception\ConfigError;
use Phlask\Exception\DuplicateTask;
use Phlask\Exception\Unreachable;

/**
 * The MongoDB backend (spec/backends/mongodb.md), with the `mongodb` extension's own
 * driver API: one task document per task in the task collection (`phlask_tasks` unless
 * the URL says `?collection=NAME`). Works with MongoDB 4.4+ and FerretDB.
 *
 *     $queue = Queue::connect('mongodb://127.0.0.1:27017/app');
 *     $queue = new MongoQueue(['url' => 'mongodb://db1,db2/app?replicaSet=rs0', 'collection' => 'phlask_tasks']);
 *
 * Options: `url` (the database name is required; every other query option goes to the
 * driver), `collection` (wins over the URL's), `retry_for` (seconds to retry network
 * errors and failovers before Unreachable, default 10), `driver_options` (the
 * extension's $driverOptions, e.g. TLS settings), `signing_key`. The connection is
 * opened on the first push.
 */
final class MongoQueue extends Queue
{
    public const DEFAULT_COLLECTION = 'phlask_tasks';
    private const DUPLICATE_KEY = 11000;
    /** Server codes worth retrying: the server is restarting, stepping down or briefly unreachable. */
    private const TRANSIENT_CODES = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436];

    /** The URL as given, for messages (password hidden by Unreachable). */
    public readonly string $url;
    public readonly string $database;
    public readonly string $collection;
    private readonly string $clientUrl;
    private readonly float $retryFor;
    /** @var array<string, mixed> */
    private readonly array $driverOptions;
    private ?Manager $manager = null;

    /**
     * @param array{url: string, collection?: string, retry_for?: int|float, driver_options?: array<string, mixed>, signing_key?: mixed} $options
     * @throws ConfigError for a URL without a database, a bad collection name or option
     */
    public function __construct(array $options)
    {
        self::checkOptions(self::class, $options, ['url', 'collection', 'retry_for', 'driver_options']);
        $this->signingKey = SigningKey::from($options['signing_key'] ?? null);
        $url = $options['url'] ?? throw new ConfigError("MongoQueue: give 'url' => 'mongodb://host:27017/dbname'");
        $this->url = (string) $url;
        [$this->clientUrl, $this->database, $collection] = self::parseUrl($this->url);
        $this->collection = (string) ($options['collection'] ?? $collection ?? self::DEFAULT_COLLECTION);
        if ($this->collection === '' || strpbrk($this->collection, "\$\0") !== false
            || str_starts_with($this->collection, 'system.') || strlen($this->collection) > 100) {
            throw new ConfigError(sprintf('MongoQueue: %s is not a usable collection name', json_encode($this->collection)));
        }
        $retry = $options['retry_for'] ?? 10;
        if (!is_int($retry) && !is_float($retry) || $retry < 0) {
            throw new ConfigError('MongoQueue: retry_for is seconds, a number >= 0');
        }
        $this->retryFor = (float) $retry;
        $this->driverOptions = (array) ($options['driver_options'] ?? []);
    }

    /**
     * Split a mongodb URL into the driver's URL (without `collection=`), the database and
     * the collection the URL names (null when it names none).
     *
     * @return array{string, string, ?string}
     * @throws ConfigError
     */
    public static function parseUrl(string $url): array
    {
        $how = 'write mongodb://host:27017/dbname (optionally ?collection=phlask_tasks)';
        $shown = json_encode(Unreachable::redact($url), JSON_UNESCAPED_SLASHES);
        if (!preg_match('~^(mongodb(?:\+srv)?)://([^/?#]*)(?:/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$~Di', $url, $m)) {
            throw new ConfigError("queue URL $shown is not a mongodb URL; $how");
        }
        $database = rawurldecode($m[3] ?? '');
        if ($database === '') {
            throw new ConfigError("queue URL $shown names no database; $how");
        }
        if (strpbrk($database, "/\\. \"\$\0") !== false || strlen($database) > 63) {
            throw new ConfigError("queue URL $shown: " . json_encode($database) . ' is not a valid MongoDB database name');
        }
        $collection = null;
        $rest = [];
        foreach (explode('&', $m[4] ?? '') as $pair) {
            if ($pair === '') {
                continue;
            }
            [$key, $value] = array_pad(explode('=', $pair, 2), 2, '');
            if (rawurldecode($key) === 'collection') {
                $collection = rawurldecode($value);
            } else {
                $rest[] = $pair;
            }
        }
        $client = $m[1] . '://' . $m[2] . '/' . ($m[3] ?? '') . ($rest === [] ? '' : '?' . implode('&', $rest));
        return [$client, $database, $collection === '' ? null : $collection];
    }

    public function close(): void
    {
        $this->manager = null;
    }

    /**
     * One ordered insert of the task documents; a duplicate id whose stored body is this
     * body is a retried insert that landed, and is skipped (spec section 6).
     */
    protected function write(array $messages): void
    {
        $now = new UTCDateTime(Timestamp::nowMillis());
        $docs = array_map(static fn (Message $m): array => self::document($m, $now), $messages);
        $i = 0;
        while ($i < count($docs)) {
            $batch = array_slice($docs, $i);
            $failed = $this->call('enqueue', fn (): ?int => $this->insert($batch));
            if ($failed === null) {
                return;
            }
            $i += $failed + $this->alreadyStored(array_slice($batch, $failed, 1000));
        }
    }

    /**
     * The task document a producer inserts, fields in the document's order.
     *
     * @return array<string, mixed>
     */
    public static function document(Message $m, UTCDateTime $now): array
    {
        return [
            '_id' => $m->id,
            'queue' => $m->queue,
            'state' => 'queued',
            'priority' => $m->priority,
            'run_at' => $m->notBeforeMs === null ? $now : new UTCDateTime($m->notBeforeMs),
            'expires_at' => $m->expiresAtMs === null ? null : new UTCDateTime($m->expiresAtMs),
            'seq' => new ObjectId(),
            'gen' => 0,
            'attempts' => 0,
            'body' => new Binary($m->body, Binary::TYPE_GENERIC),
            'signature' => $m->signature,
            'key_id' => $m->keyId,
            'enqueued_at' => $now,
            'updated_at' => $now,
        ];
    }

    /**
     * @param list<array<string, mixed>> $docs
     * @return int|null the index of the first document refused as a duplicate, or null when all were stored
     */
    private function insert(array $docs): ?int
    {
        $bulk = new BulkWrite(['ordered' => true]);
        foreach ($docs as $doc) {
            $bulk->insert($doc);
        }
        try {
            $this->manager()->executeBulkWrite($this->namespace(), $bulk);
            return null;
        } catch (BulkWriteException $e) {
            $errors = $e->getWriteResult()->getWriteErrors();
            if ($errors === []) {
                throw $e; // a write concern error or a transient failure: call() decides
            }
            $first = $errors[0];
            if ($first->getCode() !== self::DUPLICATE_KEY) {
                throw new BackendError(sprintf('mongodb enqueue into %s: %s', $this->namespace(), $first->getMessage()), 0, $e);
            }
            return $first->getIndex();
        }
    }

    /**
     * How many of $docs, from the first (refused as a duplicate), are stored with the same
     * body. A different body there is a DuplicateTask; none at all (deleted meanwhile)
     * gives 0, so the insert is tried again.
     *
     * @param list<array<string, mixed>> $docs
     */
    private function alreadyStored(array $docs): int
    {
        $ids = array_map(static fn (array $d): string => $d['_id'], $docs);
        $stored = $this->call('enqueue', function () use ($ids): array {
            $cursor = $this->manager()->executeQuery(
                $this->namespace(),
                new Query(['_id' => ['$in' => $ids]], ['projection' => ['body' => 1]]),
            );
            $bodies = [];
            foreach ($cursor as $doc) {
                $body = $doc->body ?? '';
                $bodies[(string) $doc->_id] = $body instanceof Binary ? $body->getData() : (string) $body;
            }
            return $bodies;
        });
        $first = $docs[0];
        if (isset($stored[$first['_id']]) && $stored[$first['_id']] !== $first['body']->getData()) {
            throw new DuplicateTask($first['_id'], sprintf(
                '%s (tasks before it in this batch were enqueued, none after it)',
                Unreachable::redact($this->url),
            ));
        }
        $n = 0;
        while ($n < count($docs) && ($stored[$docs[$n]['_id']] ?? null) === $docs[$n]['body']->getData()) {
            $n++;
        }
        return $n;
    }

    /**
     * Run $fn, retrying transient errors with capped exponential backoff for retry_for seconds.
     *
     * @template T
     * @param callable(): T $fn
     * @return T
     */
    private function call(string $what, callable $fn): mixed
    {
        $deadline = microtime(true) + $this->retryFor;
        $pause = 0.1;
        $tries = 0;
        while (true) {
            try {
                return $fn();
            } catch (DriverException $e) {
                if (!self::transient($e)) {
                    throw new BackendError(sprintf('mongodb %s at %s: %s', $what, Unreachable::redact($this->url), $e->getMessage()), 0, $e);
                }
                $tries++;
                $left = $deadline - microtime(true);
                if ($left <= 0) {
                    throw new Unreachable($this->url, sprintf('%s failed %d time(s) in %.1fs: %s', $what, $tries, $this->retryFor, $e->getMessage()), $e);
                }
                usleep((int) (min($pause, $left) * 1e6));
                $pause = min($pause * 2, 5.0);
            }
        }
    }

    private static function transient(DriverException $e): bool
    {
        if ($e instanceof ConnectionException) { // includes ConnectionTimeoutException (no server selectable)
            return true;
        }
        if ($e instanceof ServerException || $e instanceof BulkWriteException) {
            return in_array($e->getCode(), self::TRANSIENT_CODES, true) || $e->hasErrorLabel('RetryableWriteError');
        }
        return false;
    }

    private function manager(): Manager
    {
        if ($this->manager === null) {
            // Fail fast when the server is away (the driver's defaults wait 30 s); call() retries.
            $uriOptions = ['appname' => 'phlask-php'];
            foreach (['serverSelectionTimeoutMS' => 2000, 'connectTimeoutMS' => 2000, 'socketTimeoutMS' => 60000] as $name => $value) {
                if (stripos($this->clientUrl, $name . '=') === false) {
                    $uriOptions[$name] = $value;
                }
            }
            try {
                $this->manager = new Manager($this->clientUrl, $uriOptions, $this->driverOptions);
            } catch (DriverException $e) {
                throw new ConfigError(sprintf('queue URL %s: %s', Unreachable::redact($this->url), $e->getMessage()), 0, $e);
            }
        }
        return $this->manager;
    }

    private function namespace(): string
    {
        return $this->database . '.' . $this->collection;
    }
}
