<?php

declare(strict_types=1);

namespace Phlask\Exception;

/**
 * A task with this id is already held by the backend, or a batch repeats an id.
 * Nothing of the batch was enqueued by SQLite and MongoDB; see the backend's notes in the README.
 */
final class DuplicateTask extends PhlaskException
{
    public function __construct(
        public readonly string $taskId,
        string $where = 'the queue',
        ?\Throwable $previous = null,
    ) {
        parent::__construct(
            sprintf('a task with id %s already exists in %s; task ids must be unique', self::quote($taskId), $where),
            0,
            $previous,
        );
    }

    public function errorCode(): string
    {
        return 'duplicate_id';
    }

    private static function quote(string $s): string
    {
        return (string) json_encode($s, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
    }
}
