<?php

declare(strict_types=1);

namespace Phlask\Exception;

/**
 * One problem in an envelope: a JSON path such as `$.backoff.factor` or `$.args[2]`,
 * and what is wrong there.
 */
final class FieldError implements \Stringable
{
    public function __construct(
        public readonly string $path,
        public readonly string $message,
    ) {
    }

    public function __toString(): string
    {
        return $this->path . ': ' . $this->message;
    }
}
