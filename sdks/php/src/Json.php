<?php

declare(strict_types=1);

namespace Phlask;

use Phlask\Exception\FieldError;

/**
 * JSON values in PHP, as `json_decode($text, false)` gives them: objects are `stdClass`,
 * arrays are lists, numbers are int or float. This is the one form the validator reads
 * and the encoder writes, so what is validated is exactly what goes on the wire.
 *
 * @internal
 */
final class Json
{
    private const FLAGS = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR;

    /**
     * Convert a PHP value to the JSON form, recording what cannot be JSON.
     *
     * Arrays follow json_encode(): a list becomes a JSON array, any other array an object.
     * With $emptyIsObject, `[]` becomes `{}` (for fields that must be objects: env, meta,
     * backoff). `stdClass` and `JsonSerializable` are objects as json_encode() sees them.
     *
     * @param list<FieldError> $errors problems are appended here, with their paths
     */
    public static function normalize(mixed $value, string $path, array &$errors, bool $emptyIsObject = false): mixed
    {
        if ($value === null || is_bool($value) || is_int($value)) {
            return $value;
        }
        if (is_float($value)) {
            if (!is_finite($value)) {
                $errors[] = new FieldError($path, 'must be a finite number, not ' . var_export($value, true));
            }
            return $value;
        }
        if (is_string($value)) {
            if (preg_match('//u', $value) !== 1) {
                $errors[] = new FieldError($path, 'is not valid UTF-8 text: envelopes are UTF-8 JSON');
            }
            return $value;
        }
        if (is_array($value)) {
            if ($value === []) {
                return $emptyIsObject ? new \stdClass() : [];
            }
            if (array_is_list($value)) {
                $out = [];
                foreach ($value as $i => $item) {
                    $out[] = self::normalize($item, $path . '[' . $i . ']', $errors);
                }
                return $out;
            }
            return self::object($value, $path, $errors);
        }
        if ($value instanceof \stdClass) {
            return self::object(get_object_vars($value), $path, $errors);
        }
        if ($value instanceof \JsonSerializable) {
            return self::normalize($value->jsonSerialize(), $path, $errors, $emptyIsObject);
        }
        if ($value instanceof \BackedEnum) {
            return self::normalize($value->value, $path, $errors);
        }
        $errors[] = new FieldError($path, sprintf(
            'cannot be written as JSON: %s (use arrays, stdClass, JsonSerializable or scalars)',
            get_debug_type($value),
        ));
        return null;
    }

    /**
     * @param array<array-key, mixed> $members
     * @param list<FieldError> $errors
     */
    private static function object(array $members, string $path, array &$errors): \stdClass
    {
        $out = new \stdClass();
        foreach ($members as $key => $item) {
            $key = (string) $key;
            $at = self::member($path, $key);
            if (preg_match('//u', $key) !== 1) {
                $errors[] = new FieldError($at, 'member name is not valid UTF-8 text');
                continue;
            }
            if (str_starts_with($key, "\0")) {
                // PHP objects cannot hold such a name, so json_encode() could not write it.
                $errors[] = new FieldError($at, 'member names starting with NUL cannot be written from PHP');
                continue;
            }
            $out->{$key} = self::normalize($item, $at, $errors);
        }
        return $out;
    }

    /** The path of member $name of the value at $path: `$.env.HOME`. */
    public static function member(string $path, string $name): string
    {
        return $path . '.' . $name;
    }

    /**
     * Encode a normalized value as compact UTF-8 JSON: no escaped slashes or non-ASCII,
     * floats in their shortest round-trip form whatever `serialize_precision` says.
     */
    public static function encode(mixed $value): string
    {
        $precision = ini_get('serialize_precision');
        if ($precision !== '-1') {
            ini_set('serialize_precision', '-1');
        }
        try {
            return json_encode($value, self::FLAGS, 4096);
        } finally {
            if ($precision !== '-1' && $precision !== false) {
                ini_set('serialize_precision', $precision);
            }
        }
    }

    /**
     * Decode JSON text to the normalized form (objects as stdClass).
     *
     * @throws \JsonException
     */
    public static function decode(string $text): mixed
    {
        return json_decode($text, false, 4096, JSON_THROW_ON_ERROR);
    }

    /** The JSON type of a normalized value, with an article: `an integer`, `null`. */
    public static function describe(mixed $value): string
    {
        return match (true) {
            $value === null => 'null',
            is_bool($value) => 'a boolean',
            is_int($value) => 'an integer',
            is_float($value) => self::isInteger($value) ? 'an integer' : 'a number',
            is_string($value) => 'a string',
            is_array($value) => 'an array',
            default => 'an object',
        };
    }

    /** A JSON number with a zero fractional part (JSON Schema's `integer`: 2.0 is one). */
    public static function isInteger(mixed $value): bool
    {
        return is_int($value) || (is_float($value) && is_finite($value) && floor($value) === $value);
    }

    public static function isNumber(mixed $value): bool
    {
        return is_int($value) || is_float($value);
    }

    /** A short JSON rendering of a value for messages, cut at 60 characters. */
    public static function repr(mixed $value): string
    {
        try {
            $text = self::encode($value);
        } catch (\JsonException) {
            return get_debug_type($value);
        }
        return mb_strlen($text) > 60 ? mb_substr($text, 0, 57) . '...' : $text;
    }
}
