<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\Task;
use Phlask\Tests\Support\Backend;
use Phlask\Tests\Support\Phlask;
use PHPUnit\Framework\TestCase;

/**
 * PHP-enqueued tasks run on the Python runner, on each real backend: a PHP, a Node and a
 * shell task (tests/tasks/report.*) write what they received to their result file, which
 * `phlask inspect` reads back.
 */
final class EndToEndTest extends TestCase
{
    private const KEY = ['sdk-php.k1', 'correct horse battery staple'];
    /** Spaces, quotes, a command substitution and non-ASCII: nothing may be interpreted. */
    private const ARGS = ['two words', 'it\'s "quoted"', '$(touch /tmp/phlask-pwned)', '`id`', 'Zoë 日本 😀', ''];
    private const GREETING = 'grüß dich, $HOME';

    private ?Backend $backend = null;

    protected function tearDown(): void
    {
        $this->backend?->cleanup();
    }

    /** @dataProvider \Phlask\Tests\Support\Backend::provider */
    public function testTheRunnerRunsWhatPhpEnqueued(string $name): void
    {
        // Given a signing queue on a real backend, and tasks in three languages
        $backend = $this->backend = new Backend($name);
        $queue = $backend->open(['signing_key' => self::KEY]);
        $base = ['queue' => $backend->queue, 'args' => self::ARGS, 'env' => ['GREETING' => self::GREETING], 'timeout' => 60];
        $input = ['user' => 42, 'big' => 9007199254740993, 'name' => 'Zoë', 'empty' => new \stdClass(), 'list' => []];
        $tasks = [
            'php' => Task::factory($base + ['lang' => 'php', 'file' => 'report.php', 'input' => $input]),
            'node' => Task::factory($base + ['lang' => 'node', 'file' => 'report.js', 'input' => null]),
            'shell' => Task::factory($base + ['lang' => 'shell', 'file' => 'report.sh', 'priority' => 9]),
        ];
        // and one signed with a key the runner does not hold
        $forged = Task::factory(['queue' => $backend->queue, 'lang' => 'shell', 'file' => 'report.sh']);

        // When PHP enqueues them and a runner with the keyring drains the queue
        $ids = $queue->pushMany(array_values($tasks));
        $this->assertSame(array_map(static fn (Task $t): string => $t->id(), array_values($tasks)), $ids);
        $backend->open(['signing_key' => ['sdk-php.other', 'not the secret']])->push($forged);
        [$status, $out, $err] = Phlask::run(array_merge([
            'run', '--broker', $backend->url, '--root', __DIR__ . '/tasks', '--queue', $backend->queue,
            '--wait', '20', '--config', '/dev/null', '--key', self::KEY[0] . '=' . self::KEY[1],
        ], $backend->resultsArgs()));
        $this->assertSame(0, $status, "phlask run failed:\n$out\n$err");

        // Then every task succeeded and received exactly what was enqueued
        foreach ($tasks as $lang => $task) {
            $info = Phlask::inspect($task->id(), $backend->url, $backend->resultsArgs());
            $this->assertSame('succeeded', $info->state, "$lang task: " . json_encode($info->result));
            $got = self::received($info->result->result);
            $this->assertSame($lang, $got['lang']);
            $this->assertSame(self::ARGS, $got['args'], "$lang task argv");
            $this->assertSame(self::GREETING, $got['greeting'], "$lang task env");
            $this->assertSame([$task->id(), $backend->queue, '1'], [$got['task_id'], $got['queue'], $got['attempt']]);
        }
        // stdin: the input's exact JSON text, `null` for a JSON null, nothing without input
        $this->assertSame('{"user":42,"big":9007199254740993,"name":"Zoë","empty":{},"list":[]}', self::received($this->result($tasks['php']))['stdin']);
        $this->assertSame('null', self::received($this->result($tasks['node']))['stdin']);
        $this->assertSame('', self::received($this->result($tasks['shell']))['stdin']);

        // and the forged task was refused before it ran
        $info = Phlask::inspect($forged->id(), $backend->url, $backend->resultsArgs());
        $this->assertSame(['dead', 'bad_signature'], [$info->state, $info->reason ?? $info->result->reason]);
    }

    private function result(Task $task): \stdClass
    {
        return Phlask::inspect($task->id(), $this->backend->url, $this->backend->resultsArgs())->result->result;
    }

    /**
     * What a task script wrote; the shell one writes hex (POSIX sh has no JSON encoder).
     *
     * @return array<string, mixed>
     */
    private static function received(\stdClass $result): array
    {
        $r = (array) $result;
        if ($r['lang'] === 'shell') {
            $r['args'] = array_map('hex2bin', $r['args_hex']);
            $r['greeting'] = hex2bin($r['greeting_hex']);
            $r['stdin'] = hex2bin($r['stdin_hex']);
        }
        return $r;
    }
}
