<?php

declare(strict_types=1);

namespace Phlask;

use Phlask\Exception\ConfigError;
use Phlask\Exception\DuplicateTask;
use Phlask\Exception\InvalidTask;

/**
 * A phlask backend to enqueue onto: {@see SqliteQueue}, {@see MongoQueue} or {@see RabbitQueue}.
 *
 *     $queue = Queue::connect('amqp://guest:guest@127.0.0.1:5672/%2F', ['signing_key' => ['k1', 'secret']]);
 *     $id = $queue->push(Task::factory(['lang' => 'php', 'file' => '/srv/jobs/report.php']));
 *
 * Every queue validates, encodes once and (with a `signing_key`) signs each envelope,
 * then performs the exact write of its spec/backends document.
 */
abstract class Queue
{
    protected ?SigningKey $signingKey;

    /** Options every queue takes. */
    protected const COMMON_OPTIONS = ['signing_key'];

    /**
     * Open the queue a URL names: `sqlite:///abs/path/queue.db`, `mongodb://host:27017/db`
     * or `amqp://user:pass@host:5672/vhost` (`amqps://` for TLS).
     *
     * @param array<string, mixed> $options the backend's options (see each class), e.g.
     *                                      `['signing_key' => ['k1', 'secret']]`
     * SQLite opens its file here; MongoDB and RabbitMQ connect on the first push, so a
     * request that enqueues nothing costs no connection.
     *
     * @throws ConfigError for an unknown scheme or bad option
     * @throws Exception\Unreachable when the SQLite file cannot be opened, naming the URL
     */
    public static function connect(string $url, array $options = []): self
    {
        $scheme = strtolower((string) strstr($url, ':', true));
        return match ($scheme) {
            'sqlite' => new SqliteQueue(['url' => $url] + $options),
            'mongodb', 'mongodb+srv' => new MongoQueue(['url' => $url] + $options),
            'amqp', 'amqps' => new RabbitQueue(['url' => $url] + $options),
            default => throw new ConfigError(sprintf(
                'queue URL %s: unknown scheme %s; use sqlite:///path/to/queue.db, mongodb://host:27017/dbname or amqp://user:pass@host:5672/vhost',
                Exception\Unreachable::redact($url),
                json_encode($scheme),
            )),
        };
    }

    /**
     * Enqueue one task.
     *
     * @param Task|array<string, mixed> $task a Task, or Task::factory() options
     * @return string the task's id
     * @throws InvalidTask when the envelope is invalid; nothing is enqueued
     * @throws DuplicateTask when the backend already holds a task with this id
     * @throws Exception\Unreachable|Exception\BackendError when the write fails
     */
    public function push(Task|array $task): string
    {
        $message = $this->prepare($task);
        $this->write([$message]);
        return $message->id;
    }

    /**
     * Enqueue several tasks in one backend write (one transaction for SQLite, one ordered
     * insert for MongoDB, one confirmed batch for RabbitMQ). Every task is validated first:
     * if one is invalid or two share an id, nothing is enqueued.
     *
     * @param iterable<Task|array<string, mixed>> $tasks
     * @return list<string> the tasks' ids, in order
     * @throws InvalidTask naming the task's index and every problem
     * @throws DuplicateTask
     * @throws Exception\Unreachable|Exception\BackendError
     */
    public function pushMany(iterable $tasks): array
    {
        $messages = [];
        $seen = [];
        foreach ($tasks as $index => $task) {
            try {
                $message = $this->prepare($task);
            } catch (InvalidTask $e) {
                throw new InvalidTask($e->errors(), $e->reason(), "invalid task at index $index of the batch (nothing was enqueued)");
            }
            if (isset($seen[$message->id])) {
                throw new DuplicateTask($message->id, 'this batch (nothing was enqueued)');
            }
            $seen[$message->id] = true;
            $messages[] = $message;
        }
        if ($messages !== []) {
            $this->write($messages);
        }
        return array_map(static fn (Message $m): string => $m->id, $messages);
    }

    /** @param Task|array<string, mixed> $task */
    private function prepare(mixed $task): Message
    {
        if (is_array($task)) {
            $task = Task::factory($task);
        } elseif (!$task instanceof Task) {
            throw new \TypeError('a queue takes Phlask\\Task objects or Task::factory() options, not ' . get_debug_type($task));
        }
        return Message::of($task, $this->signingKey);
    }

    /** Close the connection; the queue can no longer be used. Safe to call twice. */
    abstract public function close(): void;

    /**
     * Store every message, in order, as the backend document says.
     *
     * @param non-empty-list<Message> $messages
     */
    abstract protected function write(array $messages): void;

    /**
     * Check option names, so that a typo is an error rather than a silent default.
     *
     * @param array<string, mixed> $options
     * @param list<string> $known
     * @throws ConfigError
     */
    protected static function checkOptions(string $class, array $options, array $known): void
    {
        $known = array_merge($known, self::COMMON_OPTIONS);
        foreach (array_keys($options) as $name) {
            if (!in_array($name, $known, true)) {
                throw new ConfigError(sprintf('%s: unknown option %s; options are %s', $class, json_encode($name), implode(', ', $known)));
            }
        }
    }
}
