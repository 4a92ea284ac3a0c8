<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\Exception\InvalidTask;
use Phlask\Json;
use Phlask\Task;
use Phlask\Tests\Support\JsonValue;
use Phlask\Tests\Support\Repo;
use PHPUnit\Framework\TestCase;

/**
 * conformance/vectors/build/*.json: Task::factory() with the vector's inputs and clock
 * gives the expected envelope (parsed JSON compared, `producer` removed), or refuses the
 * input with an error at the vector's path.
 */
final class BuildVectorsTest extends TestCase
{
    /** @return iterable<string, array{\stdClass}> */
    public static function cases(): iterable
    {
        foreach (Repo::vectorFiles('build') as $file) {
            $stem = basename($file, '.json');
            foreach (Repo::load($file) as $case) {
                yield "$stem: {$case->description}" => [$case];
            }
        }
    }

    /** @dataProvider cases */
    public function testBuild(\stdClass $case): void
    {
        // Given the vector's inputs as factory options (nested objects stay stdClass) and its clock
        $options = get_object_vars($case->input);
        $now = new \DateTimeImmutable($case->now);

        if (isset($case->error)) {
            // When it is built and encoded, Then it is refused at the vector's path
            try {
                Task::factory($options, $now)->toJson();
                $this->fail("expected an error at {$case->error}");
            } catch (InvalidTask $e) {
                $this->assertTrue(JsonValue::hasPath($e->paths(), $case->error), $e->getMessage());
            }
            return;
        }

        // When it is built
        $json = Task::factory($options, $now)->toJson();

        // Then its bytes, parsed, are the expected envelope plus this SDK's producer
        $built = Json::decode($json);
        $this->assertEquals(
            (object) ['sdk' => 'phlask-php', 'version' => Task::VERSION, 'host' => gethostname()],
            $built->producer,
        );
        unset($built->producer);
        $this->assertTrue(
            JsonValue::equal($case->expected, $built),
            "expected\n" . Json::encode($case->expected) . "\ngot\n" . Json::encode($built),
        );
    }
}
