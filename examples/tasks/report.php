<?php
// A PHP task: reads its JSON input from stdin, its arguments from argv, writes a JSON result.
$input = json_decode(stream_get_contents(STDIN) ?: 'null', true);
$month = $argv[1] ?? 'unknown';
$rows = ($input['rows'] ?? 0) * 2;
fwrite(STDOUT, "php report for {$month}: {$rows} rows (greeting: " . getenv('GREETING') . ")\n");
file_put_contents(getenv('PHLASK_RESULT_FILE'), json_encode(['lang' => 'php', 'month' => $month, 'rows' => $rows]));
