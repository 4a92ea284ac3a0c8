<?php

declare(strict_types=1);

namespace Phlask;

/**
 * A validated task ready for a backend write: the envelope's exact bytes, the signature
 * beside them, and the envelope values a backend copies for scheduling.
 *
 * @internal
 */
final class Message
{
    public function __construct(
        public readonly string $id,
        public readonly string $queue,
        public readonly int $priority,
        public readonly ?int $notBeforeMs,
        public readonly ?int $expiresAtMs,
        public readonly string $body,
        public readonly ?string $signature,
        public readonly ?string $keyId,
    ) {
    }

    /** Encode and validate $task, sign its bytes with $key when given. */
    public static function of(Task $task, ?SigningKey $key): self
    {
        $body = $task->toJson();
        $e = $task->envelope();
        return new self(
            $e->id,
            $e->queue,
            (int) $e->priority,
            isset($e->not_before) ? Timestamp::toMillis($e->not_before) : null,
            isset($e->expires_at) ? Timestamp::toMillis($e->expires_at) : null,
            $body,
            $key?->sign($body),
            $key?->id,
        );
    }
}
