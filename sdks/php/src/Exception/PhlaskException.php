<?php

declare(strict_types=1);

namespace Phlask\Exception;

/**
 * Base of every exception phlask throws. {@see errorCode()} is stable and
 * machine-readable (the same codes as the Python implementation's errors).
 */
abstract class PhlaskException extends \RuntimeException
{
    /** Stable code of this kind of error, e.g. `duplicate_id`. */
    abstract public function errorCode(): string;
}
