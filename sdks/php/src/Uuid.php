<?php

declare(strict_types=1);

namespace Phlask;

/**
 * UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, as lowercase hex.
 *
 * @internal
 */
final class Uuid
{
    private static int $lastMs = 0;
    private static int $seq = 0;

    /**
     * A new UUIDv7. Ids made in the same millisecond by this process still sort in
     * creation order: a 12-bit counter seeded at random fills `rand_a`.
     */
    public static function v7(): string
    {
        $ms = Timestamp::nowMillis();
        if ($ms > self::$lastMs) {
            self::$lastMs = $ms;
            self::$seq = random_int(0, 0x7FF);
        } else {
            self::$seq++;
            if (self::$seq > 0xFFF) { // counter exhausted: borrow the next millisecond
                self::$lastMs++;
                self::$seq = 0;
            }
            $ms = self::$lastMs;
        }
        $bytes = substr(pack('J', $ms), 2)                      // 48-bit big-endian timestamp
            . pack('n', 0x7000 | self::$seq)                     // version 7, rand_a
            . chr(0x80 | (random_int(0, 255) & 0x3F))            // variant 10
            . random_bytes(7);
        $hex = bin2hex($bytes);
        return sprintf('%s-%s-%s-%s-%s', substr($hex, 0, 8), substr($hex, 8, 4), substr($hex, 12, 4), substr($hex, 16, 4), substr($hex, 20));
    }
}
