<?php

declare(strict_types=1);

namespace Phlask\Exception;

/** A queue URL, option or signing key is wrong; the message says which and how to fix it. */
final class ConfigError extends PhlaskException
{
    public function errorCode(): string
    {
        return 'config';
    }
}
