<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\SigningKey;
use Phlask\Tests\Support\Repo;
use PHPUnit\Framework\TestCase;

/** conformance/vectors/signing.json: HMAC-SHA256 over the exact body bytes. */
final class SigningVectorsTest extends TestCase
{
    /** @return iterable<string, array{\stdClass}> */
    public static function cases(): iterable
    {
        foreach (Repo::load(Repo::vectors() . '/signing.json') as $case) {
            yield "signing: {$case->description}" => [$case];
        }
    }

    /** @dataProvider cases */
    public function testSignature(\stdClass $case): void
    {
        $key = new SigningKey($case->key_id, $case->key);
        $valid = $case->valid ?? true;

        $this->assertSame($valid, $key->sign($case->body) === $case->signature);
        $this->assertSame($valid, $key->verify($case->body, $case->signature));
        if ($valid) {
            $this->assertTrue($key->verify($case->body, strtoupper($case->signature)), 'upper case is accepted');
        }
    }
}
