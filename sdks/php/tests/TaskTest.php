<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\Exception\ConfigError;
use Phlask\Exception\InvalidTask;
use Phlask\Exception\Unreachable;
use Phlask\Json;
use Phlask\SigningKey;
use Phlask\Task;
use Phlask\Validator;
use PHPUnit\Framework\TestCase;

/** The PHP face of the builder: what the vectors cannot say about PHP values. */
final class TaskTest extends TestCase
{
    private const UUID7 = '/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/D';

    public function testFactoryFillsEveryDefaultAnIdAndTheBuildTime(): void
    {
        // Given only what the issue's example gives
        $before = (new \DateTimeImmutable('now'))->getTimestamp();
        $task = Task::factory(['lang' => 'php', 'file' => '/srv/jobs/report.php', 'args' => ['2026-11'], 'timeout' => 60]);

        // Then every default is written out, in the envelope's member order
        $e = Json::decode($task->toJson());
        $this->assertSame(
            ['phlask', 'id', 'queue', 'lang', 'file', 'args', 'env', 'timeout', 'max_attempts', 'backoff', 'priority', 'created_at', 'meta', 'producer'],
            array_keys(get_object_vars($e)),
        );
        $this->assertMatchesRegularExpression(self::UUID7, $e->id);
        $this->assertSame($e->id, $task->id());
        $this->assertSame('default', $e->queue);
        $this->assertEquals(new \stdClass(), $e->env);
        $this->assertEquals(new \stdClass(), $e->meta);
        $this->assertSame(['initial' => 1, 'factor' => 2, 'max' => 300, 'jitter' => true], (array) $e->backoff);
        $this->assertSame([1, 0, 60], [$e->max_attempts, $e->priority, $e->timeout]);
        $this->assertMatchesRegularExpression('/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/D', $e->created_at);
        $this->assertGreaterThanOrEqual($before, (new \DateTimeImmutable($e->created_at))->getTimestamp());
        $this->assertSame('phlask-php', $e->producer->sdk);
        $this->assertStringContainsString('"env":{},', $task->toJson(), 'compact, {} for an empty env');
    }

    public function testToJsonIsStableCompactUtf8(): void
    {
        $task = Task::factory(['lang' => 'shell', 'file' => 'jobs/a/b.sh', 'args' => ['Zoë 😀', '</x>']]);
        $this->assertSame($task->toJson(), $task->toJson());
        $this->assertStringContainsString('"file":"jobs/a/b.sh"', $task->toJson(), 'slashes are not escaped');
        $this->assertStringContainsString('"args":["Zoë 😀","</x>"]', $task->toJson(), 'non-ASCII is not escaped');
    }

    public function testInputAbsentNullAndEmptyValuesAreDistinct(): void
    {
        $base = ['id' => 'in-1', 'lang' => 'shell', 'file' => 'x.sh'];
        $this->assertFalse(Task::factory($base)->has('input'), 'no key: empty stdin');
        $cases = [
            'null' => [null, '"input":null,'],
            'empty list' => [[], '"input":[],'],
            'empty object' => [new \stdClass(), '"input":{},'],
            'object' => [['user' => 42, 'tags' => []], '"input":{"user":42,"tags":[]},'],
            'false' => [false, '"input":false,'],
            'zero' => [0, '"input":0,'],
            'empty string' => ['', '"input":"",'],
            'big integer' => [9007199254740993, '"input":9007199254740993,'],
        ];
        foreach ($cases as $name => [$input, $fragment]) {
            $task = Task::factory($base + ['input' => $input]);
            $this->assertTrue($task->has('input'), $name);
            $this->assertStringContainsString($fragment, $task->toJson(), $name);
        }
    }

    public function testWithInputAndWithoutInputKeepIdAndTime(): void
    {
        $task = Task::factory(['lang' => 'shell', 'file' => 'x.sh']);
        $withNull = $task->withInput(null);
        $this->assertTrue($withNull->has('input'));
        $this->assertNull($withNull->get('input'));
        $this->assertSame([$task->id(), $task->get('created_at')], [$withNull->id(), $withNull->get('created_at')]);
        $this->assertStringContainsString('"env":{},"input":null,"max_attempts"', $withNull->toJson(), 'input in its place');
        $this->assertFalse($withNull->withoutInput()->has('input'));
        $this->assertSame($task->toJson(), $withNull->withoutInput()->toJson());
    }

    public function testNullOptionsOtherThanInputCountAsNotGiven(): void
    {
        $task = Task::factory(['lang' => 'shell', 'file' => 'x.sh', 'timeout' => null, 'queue' => null, 'delay' => null, 'id' => null]);
        $this->assertFalse($task->has('timeout'));
        $this->assertFalse($task->has('not_before'));
        $this->assertSame('default', $task->queue());
        $this->assertMatchesRegularExpression(self::UUID7, $task->id());
    }

    public function testDelayRoundsTheDecimalValueToTheMillisecond(): void
    {
        $now = new \DateTimeImmutable('2026-11-28T02:44:03.123Z');
        $cases = [[30, '02:44:33.123'], [1.005, '02:44:04.128'], [1.0005, '02:44:04.124'], [1.0004, '02:44:04.123'],
            [0.0005, '02:44:03.124'], [1.0e-5, '02:44:03.123'], [0, '02:44:03.123'], [-0.0, '02:44:03.123'], [2.5e2, '02:48:13.123']];
        foreach ($cases as [$delay, $time]) {
            $task = Task::factory(['lang' => 'shell', 'file' => 'x.sh', 'delay' => $delay], $now);
            $this->assertSame("2026-11-28T{$time}Z", $task->get('not_before'), var_export($delay, true));
        }
    }

    public function testBadDelaysAreRefused(): void
    {
        foreach ([-1, -0.001, 'soon', true, INF, NAN] as $delay) {
            $this->assertRefused(['lang' => 'shell', 'file' => 'x.sh', 'delay' => $delay], '$.delay');
        }
        $this->assertRefused(['lang' => 'shell', 'file' => 'x.sh', 'delay' => 5, 'not_before' => '2026-11-28T09:00:00Z'], '$.delay');
    }

    public function testDateTimesAreWrittenInUtcWithMilliseconds(): void
    {
        $paris = new \DateTimeImmutable('2026-11-28 10:00:00.123456', new \DateTimeZone('Europe/Paris'));
        $task = Task::factory(['lang' => 'shell', 'file' => 'x.sh', 'not_before' => $paris, 'expires_at' => '2026-11-29T00:00:00+01:00'], $paris);
        $this->assertSame('2026-11-28T09:00:00.123Z', $task->get('not_before'));
        $this->assertSame('2026-11-29T00:00:00+01:00', $task->get('expires_at'), 'strings are copied unchanged');
        $this->assertSame('2026-11-28T09:00:00.123Z', $task->get('created_at'));
    }

    public function testValidateNamesEveryPathAndProblem(): void
    {
        $task = Task::factory([
            'lang' => 'php', 'file' => 'x.php', 'priority' => 1.5, 'max_attempts' => 0,
            'backoff' => ['factor' => 0.5, 'jiter' => false], 'env' => ['1BAD' => 'x'], 'meta' => ['n' => 1],
        ]);
        try {
            $task->validate();
            $this->fail('validate() accepted an invalid task');
        } catch (InvalidTask $e) {
            $this->assertSame(['$.env.1BAD', '$.max_attempts', '$.backoff.factor', '$.backoff.jiter', '$.priority', '$.meta.n'], $e->paths());
            $this->assertSame('invalid_envelope', $e->errorCode());
            $this->assertStringContainsString('$.priority: must be an integer, not a number', $e->getMessage());
            $this->assertStringContainsString('$.max_attempts: must be >= 1, got 0', $e->getMessage());
            $this->assertStringContainsString('$.backoff.jiter: unknown field `jiter`; did you mean `jitter`?', $e->getMessage());
        }
        $this->assertCount(6, $task->errors());
    }

    public function testUnknownOptionsAreRefusedWithASuggestion(): void
    {
        $e = $this->assertRefused(['lang' => 'php', 'file' => 'x.php', 'timout' => 60], '$.timout');
        $this->assertStringContainsString('did you mean `timeout`', $e->getMessage());
    }

    public function testValuesThatCannotBeJsonAreRefusedWithTheirPath(): void
    {
        $this->assertRefused(['lang' => 'php', 'file' => 'x.php', 'args' => ["ok", "\xff"]], '$.args[1]');
        $this->assertRefused(['lang' => 'php', 'file' => 'x.php', 'timeout' => INF], '$.timeout');
        $this->assertRefused(['lang' => 'php', 'file' => 'x.php', 'input' => ['f' => fopen('php://memory', 'r')]], '$.input.f');
        $this->assertRefused(['lang' => 'php', 'file' => 'x.php', 'input' => ['when' => new \DateTimeImmutable()]], '$.input.when');
    }

    public function testArraysThatAreNotListsAreObjects(): void
    {
        $task = Task::factory(['lang' => 'php', 'file' => 'x.php', 'args' => ['a' => 'x']]);
        $this->assertSame(['$.args'], array_map(static fn ($e) => $e->path, $task->errors()));
        $task = Task::factory(['lang' => 'php', 'file' => 'x.php', 'env' => ['A', 'B']]);
        $this->assertSame('$.env', $task->errors()[0]->path, 'a list is not an env object');
    }

    public function testTooLargeEnvelopeIsRefused(): void
    {
        $task = Task::factory(['lang' => 'php', 'file' => 'x.php', 'input' => str_repeat('x', 1048576)]);
        try {
            $task->toJson();
            $this->fail('a 1 MiB input was accepted');
        } catch (InvalidTask $e) {
            $this->assertSame('too_large', $e->reason());
            $this->assertSame(['$'], $e->paths());
            $this->assertStringContainsString('the limit is 1048576 bytes', $e->getMessage());
        }
    }

    public function testFloatsAreShortestWhateverSerializePrecisionSays(): void
    {
        $old = ini_get('serialize_precision');
        ini_set('serialize_precision', '17');
        try {
            $json = Task::factory(['lang' => 'php', 'file' => 'x.php', 'timeout' => 0.1, 'input' => 2.0])->toJson();
            $this->assertSame('17', ini_get('serialize_precision'), 'the setting is restored');
        } finally {
            ini_set('serialize_precision', (string) $old);
        }
        $this->assertStringContainsString('"input":2,"timeout":0.1,', $json);
    }

    public function testUuid7IdsAreUniqueAndSortInCreationOrder(): void
    {
        $ids = [];
        for ($i = 0; $i < 5000; $i++) {
            $ids[] = Task::factory(['lang' => 'shell', 'file' => 'x.sh'])->id();
        }
        $sorted = $ids;
        sort($sorted);
        $this->assertSame($ids, $sorted);
        $this->assertCount(5000, array_unique($ids));
    }

    public function testValidatorOnJsonText(): void
    {
        $this->assertSame([], Validator::errorsForJson('{"phlask":1.0,"id":"t-1","lang":"shell","file":"a","created_at":"2024-02-29T02:44:03Z"}'));
        $this->assertSame('$', Validator::errorsForJson('{"phlask":1')[0]->path);
        $this->assertSame('$', Validator::errorsForJson("\"\xff\"")[0]->path);
        $this->assertSame(['$.created_at'], array_map(
            static fn ($e) => $e->path,
            Validator::errorsForJson('{"phlask":1,"id":"t-1","lang":"shell","file":"a","created_at":"2026-02-29T02:44:03Z"}'),
        ));
    }

    public function testSigningKeyForms(): void
    {
        $body = '{"phlask":1}';
        $expected = hash_hmac('sha256', $body, 'secret');
        foreach ([['k1', 'secret'], ['id' => 'k1', 'secret' => 'secret'], 'k1=secret', new SigningKey('k1', 'secret')] as $config) {
            $key = SigningKey::from($config);
            $this->assertSame(['k1', $expected], [$key->id, $key->sign($body)]);
        }
        $this->assertNull(SigningKey::from(null));
        $this->assertStringNotContainsString('hunter2', print_r(new SigningKey('k1', 'hunter2'), true));
        foreach ([['bad id', 's'], ['k1', ''], ['k1'], 'nokey'] as $bad) {
            try {
                SigningKey::from($bad);
                $this->fail('accepted ' . json_encode($bad));
            } catch (ConfigError $e) {
                $this->assertSame('config', $e->errorCode());
            }
        }
    }

    public function testUnreachableHidesThePassword(): void
    {
        $e = new Unreachable('amqp://guest:s3cret@10.0.0.1:5672/%2F', 'connection refused');
        $this->assertSame('amqp://guest:***@10.0.0.1:5672/%2F', $e->url);
        $this->assertSame('cannot reach amqp://guest:***@10.0.0.1:5672/%2F: connection refused', $e->getMessage());
        $this->assertSame('mongodb://h1,h2/db', Unreachable::redact('mongodb://h1,h2/db'));
    }

    /** @param array<string, mixed> $options */
    private function assertRefused(array $options, string $path): InvalidTask
    {
        try {
            Task::factory($options)->toJson();
        } catch (InvalidTask $e) {
            $this->assertContains($path, $e->paths(), $e->getMessage());
            return $e;
        }
        $this->fail('accepted ' . json_encode($options));
    }
}
