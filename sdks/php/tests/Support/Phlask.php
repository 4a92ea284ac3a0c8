<?php

declare(strict_types=1);

namespace Phlask\Tests\Support;

use PHPUnit\Framework\Assert;

/** The Python runner's CLI (env PHLASK_BIN, default `<repo>/.venv/bin/phlask`), run without a shell. */
final class Phlask
{
    public static function bin(): string
    {
        $bin = getenv('PHLASK_BIN');
        return $bin !== false && $bin !== '' ? $bin : Repo::root() . '/.venv/bin/phlask';
    }

    /**
     * Run `phlask ARGS...` and return [exit status, stdout, stderr].
     *
     * @param list<string> $args
     * @return array{int, string, string}
     */
    public static function run(array $args, float $timeout = 120.0): array
    {
        $bin = self::bin();
        if (!is_executable($bin)) {
            Assert::fail("phlask CLI not found at $bin: run scripts/setup, or set PHLASK_BIN");
        }
        $process = proc_open(array_merge([$bin], $args), [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        if (!is_resource($process)) {
            Assert::fail("cannot start $bin");
        }
        stream_set_blocking($pipes[1], false);
        stream_set_blocking($pipes[2], false);
        $out = $err = '';
        $deadline = microtime(true) + $timeout;
        while (true) {
            $read = [$pipes[1], $pipes[2]];
            $write = $except = null;
            if (@stream_select($read, $write, $except, 0, 200000) > 0) {
                foreach ($read as $pipe) {
                    $chunk = (string) fread($pipe, 65536);
                    $pipe === $pipes[1] ? $out .= $chunk : $err .= $chunk;
                }
            }
            $status = proc_get_status($process);
            if (!$status['running']) {
                $out .= stream_get_contents($pipes[1]);
                $err .= stream_get_contents($pipes[2]);
                fclose($pipes[1]);
                fclose($pipes[2]);
                proc_close($process);
                return [$status['exitcode'], $out, $err];
            }
            if (microtime(true) > $deadline) {
                proc_terminate($process, 9);
                proc_close($process);
                Assert::fail(sprintf("phlask %s did not finish in %gs\nstdout: %s\nstderr: %s", implode(' ', $args), $timeout, $out, $err));
            }
        }
    }

    /**
     * `phlask inspect ID --json` as decoded JSON (objects as stdClass).
     *
     * @param list<string> $extra
     */
    public static function inspect(string $id, string $broker, array $extra = []): \stdClass
    {
        [$status, $out, $err] = self::run(array_merge(['inspect', $id, '--broker', $broker, '--json'], $extra), 60);
        Assert::assertSame(0, $status, "phlask inspect $id failed: $err");
        return json_decode($out, false, 512, JSON_THROW_ON_ERROR);
    }
}
