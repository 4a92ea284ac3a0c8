<?php
// Conformance proof task (see README.md): append one JSON line to $CONFORMANCE_PROOF.
$env = static fn (string $name): ?string => getenv($name) === false ? null : getenv($name);
$line = json_encode([
    'lang' => 'php',
    'argv' => array_slice($argv, 1),
    'text' => $env('CONFORMANCE_TEXT'),
    'leak' => $env('CONFORMANCE_RUNNER_ONLY'),
    'stdin' => stream_get_contents(STDIN),
    'task_id' => $env('PHLASK_TASK_ID'),
    'attempt' => $env('PHLASK_ATTEMPT'),
    'queue' => $env('PHLASK_QUEUE'),
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
file_put_contents(getenv('CONFORMANCE_PROOF'), $line . "\n", FILE_APPEND);
