<?php

declare(strict_types=1);

namespace Phlask;

use Phlask\Exception\FieldError;
use Phlask\Exception\InvalidTask;

/**
 * One task to enqueue: its envelope (spec/README.md, section 2), built with every default
 * written out, an id and a creation time.
 *
 *     $task = Task::factory(['lang' => 'php', 'file' => '/srv/jobs/report.php', 'args' => ['2026-11'], 'timeout' => 60]);
 *     $queue->push($task);
 *
 * A Task is immutable. Its envelope is validated by {@see validate()} and by
 * {@see toJson()}, which every queue calls before writing.
 */
final class Task
{
    public const SDK = 'phlask-php';
    public const VERSION = '0.1.0';

    /** Builder options: the envelope's field names, plus `delay`. */
    public const OPTIONS = [
        'id', 'queue', 'lang', 'file', 'code', 'args', 'env', 'input', 'timeout',
        'max_attempts', 'backoff', 'priority', 'delay', 'not_before', 'expires_at', 'meta',
    ];

    private ?string $json = null;

    private function __construct(private readonly \stdClass $envelope)
    {
    }

    /**
     * Build a task from options named like the envelope's fields.
     *
     * Options: `lang` and one of `file` / `code` (required); `id` (default: a new UUIDv7),
     * `queue` ('default'), `args` ([]), `env` ([]), `timeout` (seconds; default: the
     * runner's), `max_attempts` (1), `backoff` (missing members from
     * ['initial' => 1, 'factor' => 2, 'max' => 300, 'jitter' => true]), `priority` (0),
     * `delay` (seconds from now: sets not_before), `not_before`, `expires_at`
     * (DateTimeInterface or RFC 3339 string), `meta` ([]), and `input`: any JSON value for
     * the task's stdin. A present `'input' => null` sends JSON `null`; leave the key out
     * for an empty stdin. Any other option set to null counts as not given.
     *
     * Arrays become JSON as json_encode() writes them; `[]` for env, meta and backoff is `{}`,
     * and for an empty object inside `input` use `new \stdClass()`.
     *
     * @param array<string, mixed> $options
     * @param \DateTimeInterface|null $now the build time (default: the clock); tests pin it
     * @throws InvalidTask for unknown options, a bad `delay`, or values that cannot be JSON.
     *                     Schema problems are reported by validate() and toJson().
     */
    public static function factory(array $options, ?\DateTimeInterface $now = null): self
    {
        $errors = [];
        foreach (array_keys($options) as $name) {
            if (!in_array($name, self::OPTIONS, true)) {
                $errors[] = new FieldError('$.' . $name, self::unknownOption((string) $name));
            }
        }
        if ($errors !== []) {
            throw new InvalidTask($errors, 'invalid', 'invalid task options');
        }
        $given = static fn (string $name): bool => isset($options[$name]);
        $nowMs = Timestamp::millisOf($now ?? new \DateTimeImmutable('now'));

        $e = new \stdClass();
        $e->phlask = Wire::PROTOCOL_VERSION;
        $e->id = $given('id') ? $options['id'] : Uuid::v7();
        $e->queue = $options['queue'] ?? Wire::DEFAULT_QUEUE;
        foreach (['lang', 'file', 'code'] as $name) {
            if ($given($name)) {
                $e->{$name} = $options[$name];
            }
        }
        $e->args = $options['args'] ?? [];
        $e->env = $options['env'] ?? [];
        if (array_key_exists('input', $options)) {
            $e->input = $options['input'];
        }
        if ($given('timeout')) {
            $e->timeout = $options['timeout'];
        }
        $e->max_attempts = $options['max_attempts'] ?? Wire::DEFAULT_MAX_ATTEMPTS;
        $e->backoff = $options['backoff'] ?? [];
        $e->priority = $options['priority'] ?? Wire::DEFAULT_PRIORITY;
        if ($given('delay')) {
            if ($given('not_before')) {
                $errors[] = new FieldError('$.delay', 'give `delay` or `not_before`, not both');
            } else {
                $ms = self::delayMillis($options['delay'], $errors);
                $e->not_before = $ms === null ? null : Timestamp::fromMillis($nowMs + $ms);
            }
        } elseif ($given('not_before')) {
            $e->not_before = self::time($options['not_before']);
        }
        if ($given('expires_at')) {
            $e->expires_at = self::time($options['expires_at']);
        }
        $e->created_at = Timestamp::fromMillis($nowMs);
        $e->meta = $options['meta'] ?? [];
        $host = gethostname();
        $e->producer = ['sdk' => self::SDK, 'version' => self::VERSION] + ($host === false ? [] : ['host' => $host]);

        $envelope = new \stdClass();
        foreach (get_object_vars($e) as $name => $value) {
            $envelope->{$name} = Json::normalize($value, '$.' . $name, $errors, in_array($name, ['env', 'meta', 'backoff', 'producer'], true));
        }
        if ($envelope->backoff instanceof \stdClass) {
            // A partial backoff is completed from the defaults, members in the defaults' order.
            $backoff = (object) Wire::DEFAULT_BACKOFF;
            foreach (get_object_vars($envelope->backoff) as $name => $value) {
                $backoff->{$name} = $value;
            }
            $envelope->backoff = $backoff;
        }
        if ($errors !== []) {
            throw new InvalidTask($errors, 'invalid', 'invalid task options');
        }
        return new self($envelope);
    }

    /** The task's id (a UUIDv7 unless one was given). */
    public function id(): string
    {
        return is_string($this->envelope->id) ? $this->envelope->id : Json::repr($this->envelope->id);
    }

    /** The task's queue name. */
    public function queue(): string
    {
        return is_string($this->envelope->queue) ? $this->envelope->queue : Json::repr($this->envelope->queue);
    }

    /** True when the envelope has this member (`input` only when given, even as null). */
    public function has(string $field): bool
    {
        return property_exists($this->envelope, $field);
    }

    /**
     * One member of the envelope in JSON form (objects as stdClass), or null when absent:
     * use has() to tell an absent `input` from a JSON null.
     */
    public function get(string $field): mixed
    {
        return $this->has($field) ? self::copy($this->envelope->{$field}) : null;
    }

    /** The envelope in JSON form (a copy: the task cannot be changed through it). */
    public function envelope(): \stdClass
    {
        return self::copy($this->envelope);
    }

    /**
     * The envelope as nested associative arrays (`{}` and `[]` both become `[]`).
     *
     * @return array<string, mixed>
     */
    public function toArray(): array
    {
        return json_decode(Json::encode($this->envelope), true, 4096, JSON_THROW_ON_ERROR);
    }

    /** The same task with `input` set: any JSON value, null included (stdin receives `null`). */
    public function withInput(mixed $input): self
    {
        $errors = [];
        $value = Json::normalize($input, '$.input', $errors);
        if ($errors !== []) {
            throw new InvalidTask($errors, 'invalid', 'invalid task options');
        }
        $fields = [];
        foreach (Wire::ENVELOPE_FIELDS as $name) {
            if ($name === 'input') {
                $fields['input'] = $value;
            } elseif (property_exists($this->envelope, $name)) {
                $fields[$name] = $this->envelope->{$name};
            }
        }
        return new self(self::copy((object) $fields));
    }

    /** The same task without `input`: the task's stdin is empty. */
    public function withoutInput(): self
    {
        $envelope = self::copy($this->envelope);
        unset($envelope->input);
        return new self($envelope);
    }

    /**
     * Every schema problem of the envelope, each with its JSON path; empty when valid.
     *
     * @return list<FieldError>
     */
    public function errors(): array
    {
        return Validator::errors($this->envelope);
    }

    /**
     * Check the envelope against spec/task.schema.json.
     *
     * @throws InvalidTask naming every problem: `$.priority: must be <= 9, got 10`
     */
    public function validate(): self
    {
        $this->toJson();
        return $this;
    }

    /**
     * The envelope's exact bytes: compact UTF-8 JSON, validated. These bytes are what
     * queues store, what the signature covers and what the runner receives; the same task
     * always gives the same bytes.
     *
     * @throws InvalidTask when the envelope is invalid or larger than 1 MiB
     */
    public function toJson(): string
    {
        if ($this->json === null) {
            $errors = $this->errors();
            if ($errors !== []) {
                throw new InvalidTask($errors);
            }
            $json = Json::encode($this->envelope);
            if (strlen($json) > Wire::ENVELOPE_BYTES) {
                throw new InvalidTask(Validator::errorsForJson($json), 'too_large');
            }
            $this->json = $json;
        }
        return $this->json;
    }

    /** @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return get_object_vars($this->envelope);
    }

    /**
     * `delay` seconds as whole milliseconds, rounded half up on the decimal value the caller
     * wrote (1.005 is 1005 ms, although 1.005 * 1000 is 1004.999... in binary).
     *
     * @param list<FieldError> $errors
     */
    private static function delayMillis(mixed $delay, array &$errors): ?int
    {
        if (!Json::isNumber($delay) || !is_finite((float) $delay) || $delay < 0) {
            $errors[] = new FieldError('$.delay', 'must be a number of seconds >= 0, got ' . Json::repr($delay));
            return null;
        }
        if ($delay == 0) {
            return 0;
        }
        // The shortest decimal that reads back as this float is what the caller wrote.
        if (!preg_match('/^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/Di', Json::encode($delay), $m)) {
            $errors[] = new FieldError('$.delay', 'cannot read ' . Json::repr($delay) . ' as a decimal number');
            return null;
        }
        $fraction = $m[2] ?? '';
        $digits = ltrim($m[1] . $fraction, '0');
        $scale = (int) ($m[3] ?? 0) - strlen($fraction) + 3; // ms = digits * 10^scale
        if ($scale >= 0) {
            $whole = $digits === '' ? '0' : $digits . str_repeat('0', $scale);
            $roundUp = false;
        } else {
            $keep = strlen($digits) + $scale;
            $whole = $keep > 0 ? substr($digits, 0, $keep) : '0';
            $roundUp = $keep >= 0 && $keep < strlen($digits) && $digits[$keep] >= '5';
        }
        if (strlen($whole) > 15) {
            $errors[] = new FieldError('$.delay', 'is too large: ' . Json::repr($delay) . ' seconds');
            return null;
        }
        return (int) $whole + ($roundUp ? 1 : 0);
    }

    private static function time(mixed $value): mixed
    {
        return $value instanceof \DateTimeInterface ? Timestamp::format($value) : $value;
    }

    private static function unknownOption(string $name): string
    {
        foreach (self::OPTIONS as $option) {
            if (levenshtein(strtolower($name), $option) <= 2) {
                return "unknown option `$name`; did you mean `$option`?";
            }
        }
        return "unknown option `$name`; options are named like the envelope's fields: " . implode(', ', self::OPTIONS);
    }

    /**
     * @template T
     * @param T $value
     * @return T
     */
    private static function copy(mixed $value): mixed
    {
        return is_object($value) || is_array($value) ? unserialize(serialize($value)) : $value;
    }
}
