<?php
// Write what this task received to $PHLASK_RESULT_FILE as JSON: its arguments, the
// GREETING variable, its stdin (exact text) and the PHLASK_* variables the runner sets.
$received = [
    'lang' => 'php',
    'args' => array_slice($argv, 1),
    'greeting' => getenv('GREETING'),
    'stdin' => stream_get_contents(STDIN),
    'task_id' => getenv('PHLASK_TASK_ID'),
    'queue' => getenv('PHLASK_QUEUE'),
    'attempt' => getenv('PHLASK_ATTEMPT'),
];
file_put_contents(getenv('PHLASK_RESULT_FILE'), json_encode($received, JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR));
