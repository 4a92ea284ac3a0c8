<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\Exception\FieldError;
use Phlask\Json;
use Phlask\Tests\Support\JsonValue;
use Phlask\Tests\Support\Repo;
use Phlask\Validator;
use PHPUnit\Framework\TestCase;

/**
 * conformance/vectors/validation/*.json: the validator gives the schema's verdict on every
 * case, both on the decoded value and on its JSON text, and names the case's path.
 */
final class ValidationVectorsTest extends TestCase
{
    /** @return iterable<string, array{string, \stdClass}> one case per vector, named `<file stem>: <description>` */
    public static function cases(): iterable
    {
        foreach (Repo::vectorFiles('validation') as $file) {
            $stem = basename($file, '.json');
            foreach (Repo::load($file) as $group) {
                foreach ($group->tests as $case) {
                    yield "$stem: {$case->description}" => [$group->schema, $case];
                }
            }
        }
    }

    /** @dataProvider cases */
    public function testDecodedValue(string $schema, \stdClass $case): void
    {
        $this->assertSame('task.schema.json', $schema, 'this SDK validates task envelopes only');
        $this->assertVerdict($case, Validator::errors($case->data));
    }

    /** @dataProvider cases */
    public function testJsonText(string $schema, \stdClass $case): void
    {
        $this->assertVerdict($case, Validator::errorsForJson(Json::encode($case->data)));
    }

    /** @param list<FieldError> $errors */
    private function assertVerdict(\stdClass $case, array $errors): void
    {
        $report = implode("\n", array_map('strval', $errors));
        if ($case->valid) {
            $this->assertSame([], $errors, "expected valid, got:\n$report");
            return;
        }
        $this->assertNotSame([], $errors, 'expected invalid, the validator accepted it');
        if (isset($case->path)) {
            $paths = array_map(static fn (FieldError $e): string => $e->path, $errors);
            $this->assertTrue(JsonValue::hasPath($paths, $case->path), "no error at {$case->path}:\n$report");
        }
    }
}
