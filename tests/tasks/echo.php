<?php
// Print what this task received, as JSON: args, stdin, environment, working directory.
$out = [
    "lang" => "php",
    "args" => array_slice($argv, 1),
    "stdin" => stream_get_contents(STDIN),
    "env" => (object) getenv(),
    "cwd" => getcwd(),
];
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR), "\n";
