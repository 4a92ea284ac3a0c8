<?php

declare(strict_types=1);

namespace Phlask;

use Phlask\Exception\FieldError;
use Phlask\Exception\InvalidTask;

/**
 * The envelope schema (spec/task.schema.json, JSON Schema 2020-12) checked by hand:
 * `format: date-time` asserted, patterns with ECMA-262 semantics, lengths in code points,
 * `2.0` an integer. Every problem is reported with its JSON path.
 *
 * The conformance vectors (conformance/vectors/validation) prove that this gives the
 * schema's verdict; see tests/VectorsTest.php.
 */
final class Validator
{
    private const HINTS = [
        'id' => 'must be 1-128 characters of A-Z a-z 0-9 . _ : - (no spaces)',
        'queue' => 'must start with a-z or 0-9 and be at most 64 characters of a-z 0-9 . _ -',
        'lang' => 'must be an adapter name: a lowercase letter, then at most 31 of a-z 0-9 _ -',
        'timestamp' => 'must be an RFC 3339 date-time with an offset, such as 2026-11-28T09:00:00Z',
        'nul' => 'must not contain a NUL character (processes cannot receive one)',
        'env_name' => 'is not a valid environment variable name (letters, digits and _, not starting with a digit)',
    ];

    /**
     * Validate the JSON text of an envelope and throw when it is not a valid task.
     *
     * @throws InvalidTask naming every problem with its JSON path
     */
    public static function assertJson(string $json): void
    {
        $errors = self::errorsForJson($json);
        if ($errors !== []) {
            $tooLarge = count($errors) === 1 && strlen($json) > Wire::ENVELOPE_BYTES;
            throw new InvalidTask($errors, $tooLarge ? 'too_large' : 'invalid');
        }
    }

    /**
     * Every problem of an envelope's JSON text: size, UTF-8, JSON syntax, then the schema.
     *
     * @return list<FieldError> empty when the envelope is valid
     */
    public static function errorsForJson(string $json): array
    {
        $size = strlen($json);
        if ($size > Wire::ENVELOPE_BYTES) {
            return [new FieldError('$', sprintf(
                'envelope is %d bytes; the limit is %d bytes (1 MiB). Put large data somewhere the task can fetch it and pass a reference',
                $size,
                Wire::ENVELOPE_BYTES,
            ))];
        }
        if (preg_match('//u', $json) !== 1) {
            return [new FieldError('$', 'not valid UTF-8: envelopes are UTF-8 JSON text')];
        }
        try {
            $value = Json::decode($json);
        } catch (\JsonException $e) {
            return [new FieldError('$', 'not valid JSON: ' . $e->getMessage())];
        }
        return self::errors($value);
    }

    /**
     * Every schema problem of a decoded envelope, in the form json_decode($text, false)
     * gives (objects as stdClass): see {@see Json::normalize()} for PHP arrays.
     *
     * @return list<FieldError> empty when the envelope is valid
     */
    public static function errors(mixed $envelope): array
    {
        $errors = [];
        if (!$envelope instanceof \stdClass) {
            return [new FieldError('$', 'an envelope must be a JSON object, not ' . Json::describe($envelope))];
        }
        $members = get_object_vars($envelope);
        foreach ($members as $name => $_) {
            $name = (string) $name;
            if (!in_array($name, Wire::ENVELOPE_FIELDS, true)) {
                $errors[] = new FieldError('$.' . $name, self::unknown($name, Wire::ENVELOPE_FIELDS, 'put extensions in `meta`'));
            }
        }
        foreach (Wire::REQUIRED_FIELDS as $name) {
            if (!array_key_exists($name, $members)) {
                $errors[] = new FieldError('$.' . $name, "required field `$name` is missing");
            }
        }
        $hasFile = array_key_exists('file', $members);
        $hasCode = array_key_exists('code', $members);
        if ($hasFile && $hasCode) {
            $errors[] = new FieldError('$.code', 'give exactly one of `file` or `code`, not both');
        } elseif (!$hasFile && !$hasCode) {
            $errors[] = new FieldError('$.file', 'required: give exactly one of `file` (a script path) or `code` (inline source)');
        }

        foreach ($members as $name => $value) {
            $name = (string) $name;
            $path = '$.' . $name;
            match ($name) {
                'phlask' => self::phlask($value, $path, $errors),
                'id', 'queue', 'lang' => self::patterned($value, $path, $name, $errors),
                'file' => self::file($value, $path, $errors),
                'code' => self::code($value, $path, $errors),
                'args' => self::args($value, $path, $errors),
                'env' => self::env($value, $path, $errors),
                'timeout' => self::number($value, $path, $errors, Wire::TIMEOUT_BOUNDS, exclusiveMinimum: true),
                'max_attempts' => self::integer($value, $path, $errors, Wire::MAX_ATTEMPTS_BOUNDS),
                'priority' => self::integer($value, $path, $errors, Wire::PRIORITY_BOUNDS),
                'backoff' => self::backoff($value, $path, $errors),
                'not_before', 'expires_at', 'created_at' => self::timestamp($value, $path, $errors),
                'meta' => self::meta($value, $path, $errors),
                'producer' => self::producer($value, $path, $errors),
                default => null, // input: any JSON value; unknown members are reported above
            };
        }
        return $errors;
    }

    /** True when $value is a timestamp of the schema's profile on a real calendar date. */
    public static function isTimestamp(mixed $value): bool
    {
        return is_string($value)
            && Wire::matches(Wire::PATTERN_TIMESTAMP, $value)
            && checkdate((int) substr($value, 5, 2), (int) substr($value, 8, 2), (int) substr($value, 0, 4));
    }

    /** @param list<FieldError> $errors */
    private static function phlask(mixed $value, string $path, array &$errors): void
    {
        if (!Json::isNumber($value) || $value != Wire::PROTOCOL_VERSION) {
            $errors[] = new FieldError($path, sprintf(
                'must be %d: this is protocol version %d, got %s',
                Wire::PROTOCOL_VERSION,
                Wire::PROTOCOL_VERSION,
                Json::repr($value),
            ));
        }
    }

    /** @param list<FieldError> $errors */
    private static function patterned(mixed $value, string $path, string $name, array &$errors): void
    {
        $pattern = ['id' => Wire::PATTERN_ID, 'queue' => Wire::PATTERN_QUEUE, 'lang' => Wire::PATTERN_LANG][$name];
        if (self::isString($value, $path, $errors) && !Wire::matches($pattern, $value)) {
            $errors[] = new FieldError($path, Json::repr($value) . ' ' . self::HINTS[$name]);
        }
    }

    /** @param list<FieldError> $errors */
    private static function file(mixed $value, string $path, array &$errors): void
    {
        if (!self::isString($value, $path, $errors)) {
            return;
        }
        self::length($value, $path, $errors, Wire::FILE_MIN_LENGTH, Wire::FILE_MAX_LENGTH);
        self::noNul($value, $path, $errors);
    }

    /** @param list<FieldError> $errors */
    private static function code(mixed $value, string $path, array &$errors): void
    {
        if (self::isString($value, $path, $errors)) {
            self::length($value, $path, $errors, Wire::CODE_MIN_LENGTH, Wire::CODE_CHARS);
        }
    }

    /** @param list<FieldError> $errors */
    private static function args(mixed $value, string $path, array &$errors): void
    {
        if (!is_array($value)) {
            $errors[] = new FieldError($path, 'must be an array of strings, not ' . Json::describe($value));
            return;
        }
        foreach ($value as $i => $item) {
            $at = $path . '[' . $i . ']';
            if (self::isString($item, $at, $errors)) {
                self::noNul($item, $at, $errors);
            }
        }
    }

    /** @param list<FieldError> $errors */
    private static function env(mixed $value, string $path, array &$errors): void
    {
        if (!$value instanceof \stdClass) {
            $errors[] = new FieldError($path, 'must be an object of strings, not ' . Json::describe($value));
            return;
        }
        foreach (get_object_vars($value) as $name => $item) {
            $name = (string) $name;
            $at = Json::member($path, $name);
            if (!Wire::matches(Wire::PATTERN_ENV_NAME, $name)) {
                $errors[] = new FieldError($at, Json::repr($name) . ' ' . self::HINTS['env_name']);
            }
            if (self::isString($item, $at, $errors)) {
                self::noNul($item, $at, $errors);
            }
        }
    }

    /** @param list<FieldError> $errors */
    private static function backoff(mixed $value, string $path, array &$errors): void
    {
        if (!$value instanceof \stdClass) {
            $errors[] = new FieldError($path, 'must be an object, not ' . Json::describe($value));
            return;
        }
        foreach (get_object_vars($value) as $name => $item) {
            $name = (string) $name;
            $at = Json::member($path, $name);
            if ($name === 'jitter') {
                if (!is_bool($item)) {
                    $errors[] = new FieldError($at, 'must be a boolean, not ' . Json::describe($item));
                }
            } elseif (isset(Wire::BACKOFF_BOUNDS[$name])) {
                self::number($item, $at, $errors, Wire::BACKOFF_BOUNDS[$name]);
            } else {
                $errors[] = new FieldError($at, self::unknown($name, Wire::BACKOFF_FIELDS));
            }
        }
    }

    /** @param list<FieldError> $errors */
    private static function meta(mixed $value, string $path, array &$errors): void
    {
        if (!$value instanceof \stdClass) {
            $errors[] = new FieldError($path, 'must be an object of strings, not ' . Json::describe($value));
            return;
        }
        $members = get_object_vars($value);
        if (count($members) > Wire::META_ENTRIES) {
            $errors[] = new FieldError($path, sprintf('must have at most %d entries, got %d', Wire::META_ENTRIES, count($members)));
        }
        foreach ($members as $name => $item) {
            self::isString($item, Json::member($path, (string) $name), $errors);
        }
    }

    /** @param list<FieldError> $errors */
    private static function producer(mixed $value, string $path, array &$errors): void
    {
        if (!$value instanceof \stdClass) {
            $errors[] = new FieldError($path, 'must be an object, not ' . Json::describe($value));
            return;
        }
        foreach (get_object_vars($value) as $name => $item) {
            $name = (string) $name;
            $at = Json::member($path, $name);
            if (in_array($name, Wire::PRODUCER_FIELDS, true)) {
                self::isString($item, $at, $errors);
            } else {
                $errors[] = new FieldError($at, self::unknown($name, Wire::PRODUCER_FIELDS));
            }
        }
    }

    /** @param list<FieldError> $errors */
    private static function timestamp(mixed $value, string $path, array &$errors): void
    {
        if (!self::isString($value, $path, $errors)) {
            return;
        }
        if (!Wire::matches(Wire::PATTERN_TIMESTAMP, $value)) {
            $errors[] = new FieldError($path, Json::repr($value) . ' ' . self::HINTS['timestamp']);
        } elseif (!self::isTimestamp($value)) {
            $errors[] = new FieldError($path, Json::repr($value) . ' is not a real date-time (check the day of the month)');
        }
    }

    /**
     * @param array{0: int|float, 1: int|float} $bounds
     * @param list<FieldError> $errors
     */
    private static function number(mixed $value, string $path, array &$errors, array $bounds, bool $exclusiveMinimum = false): void
    {
        if (!Json::isNumber($value)) {
            $errors[] = new FieldError($path, 'must be a number, not ' . Json::describe($value));
            return;
        }
        [$min, $max] = $bounds;
        if ($exclusiveMinimum ? !($value > $min) : !($value >= $min)) {
            $errors[] = new FieldError($path, sprintf('must be %s %s, got %s', $exclusiveMinimum ? '>' : '>=', $min, Json::repr($value)));
        } elseif (!($value <= $max)) {
            $errors[] = new FieldError($path, sprintf('must be <= %s, got %s', $max, Json::repr($value)));
        }
    }

    /**
     * @param array{0: int, 1: int} $bounds
     * @param list<FieldError> $errors
     */
    private static function integer(mixed $value, string $path, array &$errors, array $bounds): void
    {
        if (!Json::isInteger($value)) {
            $errors[] = new FieldError($path, 'must be an integer, not ' . Json::describe($value));
            return;
        }
        self::number($value, $path, $errors, $bounds);
    }

    /**
     * @param list<FieldError> $errors
     * @phpstan-assert-if-true string $value
     */
    private static function isString(mixed $value, string $path, array &$errors): bool
    {
        if (is_string($value)) {
            return true;
        }
        $errors[] = new FieldError($path, 'must be a string, not ' . Json::describe($value));
        return false;
    }

    /** @param list<FieldError> $errors */
    private static function length(string $value, string $path, array &$errors, int $min, int $max): void
    {
        $length = mb_strlen($value, 'UTF-8'); // code points, as JSON Schema counts
        if ($length < $min) {
            $errors[] = new FieldError($path, 'must not be empty');
        } elseif ($length > $max) {
            $errors[] = new FieldError($path, sprintf('must be at most %d characters, got %d', $max, $length));
        }
    }

    /** @param list<FieldError> $errors */
    private static function noNul(string $value, string $path, array &$errors): void
    {
        if (!Wire::matches(Wire::PATTERN_NO_NUL, $value)) {
            $errors[] = new FieldError($path, self::HINTS['nul']);
        }
    }

    /** @param list<string> $known */
    private static function unknown(string $name, array $known, string $otherwise = ''): string
    {
        $best = null;
        $bestDistance = 3;
        foreach ($known as $candidate) {
            $distance = levenshtein(strtolower($name), $candidate);
            if ($distance < $bestDistance) {
                [$best, $bestDistance] = [$candidate, $distance];
            }
        }
        $message = 'unknown field `' . $name . '`';
        if ($best !== null) {
            return $message . '; did you mean `' . $best . '`?';
        }
        return $otherwise === '' ? $message : $message . '; ' . $otherwise;
    }
}
