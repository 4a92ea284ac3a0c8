<?php
// Write what this task received, as JSON, to $PHLASK_RESULT_FILE: its arguments, the
// GREETING variable, its task id and its stdin.
$out = [
    "lang" => "php",
    "args" => array_slice($argv, 1),
    "greeting" => getenv("GREETING"),
    "task_id" => getenv("PHLASK_TASK_ID"),
    "stdin" => stream_get_contents(STDIN),
];
file_put_contents(getenv("PHLASK_RESULT_FILE"),
    json_encode($out, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR));
