<?php

declare(strict_types=1);

namespace Phlask;

/**
 * RFC 3339 timestamps as the protocol writes them (spec/README.md, section 2.5).
 *
 * @internal
 */
final class Timestamp
{
    /** The producer format: UTC, exactly three fraction digits, `Z` (2026-11-28T02:44:03.123Z). */
    public static function format(\DateTimeInterface $time): string
    {
        return \DateTimeImmutable::createFromInterface($time)
            ->setTimezone(new \DateTimeZone('UTC'))
            ->format('Y-m-d\TH:i:s.v\Z');
    }

    /** Unix milliseconds of $time, fraction beyond the millisecond dropped. */
    public static function millisOf(\DateTimeInterface $time): int
    {
        return $time->getTimestamp() * 1000 + intdiv((int) $time->format('u'), 1000);
    }

    /** Unix milliseconds in the producer format. */
    public static function fromMillis(int $ms): string
    {
        $seconds = intdiv($ms, 1000);
        $rest = $ms % 1000;
        if ($rest < 0) {
            [$seconds, $rest] = [$seconds - 1, $rest + 1000];
        }
        return (new \DateTimeImmutable('@' . $seconds))->format('Y-m-d\TH:i:s') . sprintf('.%03dZ', $rest);
    }

    /**
     * Unix milliseconds of a timestamp that passed the schema's pattern (any offset, up to
     * nine fraction digits; digits beyond the millisecond are dropped).
     */
    public static function toMillis(string $timestamp): int
    {
        if (!preg_match('/^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d\d):(\d\d))$/D', $timestamp, $m)) {
            throw new \InvalidArgumentException('not an RFC 3339 timestamp: ' . $timestamp);
        }
        $utc = new \DateTimeImmutable(sprintf('%s-%s-%sT%s:%s:%s+00:00', $m[1], $m[2], $m[3], $m[4], $m[5], $m[6]));
        $ms = $utc->getTimestamp() * 1000 + (int) substr(str_pad($m[7] ?? '', 3, '0'), 0, 3);
        if (($m[8] ?? '') !== '') {
            $offset = ((int) $m[9] * 60 + (int) $m[10]) * 60000;
            $ms -= $m[8] === '+' ? $offset : -$offset;
        }
        return $ms;
    }

    /** The current time in Unix milliseconds. */
    public static function nowMillis(): int
    {
        $t = gettimeofday();
        return $t['sec'] * 1000 + intdiv($t['usec'], 1000);
    }
}
