<?php

declare(strict_types=1);

namespace Phlask\Tests\Support;

/** Equality of decoded JSON values (objects as stdClass), as conformance/README.md defines it. */
final class JsonValue
{
    /** Key order does not matter, numbers compare by value (60 equals 60.0), booleans never equal numbers. */
    public static function equal(mixed $a, mixed $b): bool
    {
        if ((is_int($a) || is_float($a)) && (is_int($b) || is_float($b))) {
            return $a == $b;
        }
        if ($a instanceof \stdClass && $b instanceof \stdClass) {
            $x = get_object_vars($a);
            $y = get_object_vars($b);
            if (count($x) !== count($y)) {
                return false;
            }
            foreach ($x as $k => $v) {
                if (!array_key_exists($k, $y) || !self::equal($v, $y[$k])) {
                    return false;
                }
            }
            return true;
        }
        if (is_array($a) && is_array($b)) {
            if (count($a) !== count($b)) {
                return false;
            }
            foreach ($a as $i => $v) {
                if (!self::equal($v, $b[$i])) {
                    return false;
                }
            }
            return true;
        }
        return $a === $b;
    }

    /** @param list<string> $paths */
    public static function hasPath(array $paths, string $prefix): bool
    {
        foreach ($paths as $path) {
            if (str_starts_with($path, $prefix)) {
                return true;
            }
        }
        return false;
    }
}
