<?php
// Conformance driver for the PHP SDK (sdks/php): one JSON request on stdin, one JSON
// response on stdout. The protocol is in conformance/README.md, "Drivers".

declare(strict_types=1);

require dirname(__DIR__, 2) . '/sdks/php/autoload.php';

use Phlask\Exception\FieldError;
use Phlask\Exception\InvalidTask;
use Phlask\Exception\PhlaskException;
use Phlask\Json;
use Phlask\Queue;
use Phlask\SigningKey;
use Phlask\Task;
use Phlask\Validator;

const OUT_FLAGS = JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR;

/** Parse JSON with objects as stdClass, so `{}` and `[]` stay distinct. */
function load(string $path): mixed
{
    return json_decode((string) file_get_contents($path), false, 4096, JSON_THROW_ON_ERROR);
}

/** @param list<FieldError> $errors */
function verdict(array $errors): array
{
    return [
        'valid' => $errors === [],
        'paths' => array_map(static fn (FieldError $e): string => $e->path, $errors),
        'message' => $errors === [] ? null : implode('; ', array_map('strval', $errors)),
    ];
}

function validate(array $files): array
{
    $results = [];
    foreach ($files as $file) {
        foreach (load($file) as $group) {
            foreach ($group->tests as $case) {
                $results[] = ['file' => $file, 'description' => $case->description, 'checks' => [
                    'Validator::errors' => verdict(Validator::errors($case->data)),
                    'Validator::errorsForJson' => verdict(Validator::errorsForJson(Json::encode($case->data))),
                ]];
            }
        }
    }
    return ['results' => $results];
}

/** Builder inputs under their spec field names are Task::factory() options as they are. */
function task(\stdClass $input, ?string $now): Task
{
    return Task::factory(get_object_vars($input), $now === null ? null : new \DateTimeImmutable($now));
}

function build(array $files): array
{
    $results = [];
    foreach ($files as $file) {
        foreach (load($file) as $vec) {
            $out = ['file' => $file, 'description' => $vec->description];
            try {
                $out['body'] = task($vec->input, $vec->now)->toJson();
            } catch (InvalidTask $e) {
                $out['error'] = ['paths' => $e->paths(), 'message' => $e->getMessage()];
            }
            $results[] = $out;
        }
    }
    return ['results' => $results];
}

function enqueue(string $url, array $tasks, ?array $signingKey): array
{
    try {
        $queue = Queue::connect($url, $signingKey === null ? [] : ['signing_key' => $signingKey]);
        try {
            return ['ids' => $queue->pushMany(array_map(static fn (\stdClass $t): Task => task($t, null), $tasks))];
        } finally {
            $queue->close();
        }
    } catch (PhlaskException $e) {
        return ['error' => ['type' => get_class($e), 'code' => $e->errorCode(), 'message' => $e->getMessage()]];
    }
}

function sign(\stdClass $input, ?string $now, array $key): array
{
    $body = task($input, $now)->toJson();
    return ['body' => $body, 'signature' => (new SigningKey($key[0], $key[1]))->sign($body), 'key_id' => $key[0]];
}

$request = json_decode((string) stream_get_contents(STDIN), false, 4096, JSON_THROW_ON_ERROR);
$response = match ($request->op) {
    'validate' => validate($request->files),
    'build' => build($request->files),
    'enqueue' => enqueue($request->url, $request->tasks, $request->signing_key ?? null),
    'sign' => sign($request->envelope_input, $request->now ?? null, $request->key),
    default => null,
};
if ($response === null) {
    fwrite(STDERR, "php driver: unknown op {$request->op}\n");
    exit(2);
}
echo json_encode($response, OUT_FLAGS), "\n";
