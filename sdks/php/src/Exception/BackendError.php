<?php

declare(strict_types=1);

namespace Phlask\Exception;

/**
 * The backend was reached but refused or failed the write (a RabbitMQ nack or return,
 * a MongoDB write error, a locked SQLite file). Whether the task was stored is unknown
 * unless the message says otherwise.
 */
final class BackendError extends PhlaskException
{
    public function errorCode(): string
    {
        return 'broker';
    }
}
