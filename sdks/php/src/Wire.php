<?php

declare(strict_types=1);

namespace Phlask;

/**
 * Contract constants from spec/wire.json and spec/task.schema.json.
 *
 * Copied here so that an installed package needs no spec/ directory;
 * tests/WireTest.php compares every value with the spec files and fails when they drift.
 */
final class Wire
{
    public const PROTOCOL_VERSION = 1;

    public const ENVELOPE_BYTES = 1048576;
    public const CODE_CHARS = 262144;
    public const META_ENTRIES = 64;
    public const MAX_TIMEOUT_SECONDS = 604800;

    public const DEFAULT_QUEUE = 'default';
    public const DEFAULT_MAX_ATTEMPTS = 1;
    public const DEFAULT_PRIORITY = 0;
    public const DEFAULT_BACKOFF = ['initial' => 1, 'factor' => 2, 'max' => 300, 'jitter' => true];

    /** Schema patterns, ECMA-262 syntax exactly as in task.schema.json. */
    public const PATTERN_ID = '^[A-Za-z0-9._:-]{1,128}$';
    public const PATTERN_QUEUE = '^[a-z0-9][a-z0-9._-]{0,63}$';
    public const PATTERN_LANG = '^[a-z][a-z0-9_-]{0,31}$';
    public const PATTERN_NO_NUL = '^[^\x00]*$';
    public const PATTERN_ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';
    public const PATTERN_TIMESTAMP = '^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$';
    public const PATTERN_KEY_ID = '^[A-Za-z0-9._-]{1,64}$';

    public const FILE_MIN_LENGTH = 1;
    public const FILE_MAX_LENGTH = 4096;
    public const CODE_MIN_LENGTH = 1;

    /** Numeric bounds: [minimum, maximum], or for timeout [exclusiveMinimum, maximum]. */
    public const TIMEOUT_BOUNDS = [0, 604800];
    public const MAX_ATTEMPTS_BOUNDS = [1, 100];
    public const PRIORITY_BOUNDS = [0, 9];
    public const BACKOFF_BOUNDS = ['initial' => [0, 604800], 'factor' => [1, 100], 'max' => [0, 604800]];

    /** Members of the objects with a fixed set of members, in the order producers write them. */
    public const ENVELOPE_FIELDS = [
        'phlask', 'id', 'queue', 'lang', 'file', 'code', 'args', 'env', 'input', 'timeout',
        'max_attempts', 'backoff', 'priority', 'not_before', 'expires_at', 'created_at', 'meta', 'producer',
    ];
    public const REQUIRED_FIELDS = ['phlask', 'id', 'lang', 'created_at'];
    public const BACKOFF_FIELDS = ['initial', 'factor', 'max', 'jitter'];
    public const PRODUCER_FIELDS = ['sdk', 'version', 'host'];

    public const SIGNATURE_ALGORITHM = 'hmac-sha256';

    /**
     * A schema pattern as a PCRE regex with ECMA-262 semantics: `u` so that quantifiers
     * count code points and classes never match half a character, `D` so that `$` does
     * not match before a final newline.
     */
    public static function regex(string $pattern): string
    {
        return '/' . str_replace('/', '\/', $pattern) . '/Du';
    }

    /** True when $subject (UTF-8) matches the schema pattern; invalid UTF-8 never matches. */
    public static function matches(string $pattern, string $subject): bool
    {
        return preg_match(self::regex($pattern), $subject) === 1;
    }
}
