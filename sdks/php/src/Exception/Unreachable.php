<?php

declare(strict_types=1);

namespace Phlask\Exception;

/**
 * The backend at {@see $url} cannot be reached (connection refused, unknown host,
 * timeout, a file that cannot be opened). The URL is shown with its password removed.
 */
final class Unreachable extends PhlaskException
{
    public readonly string $url;

    public function __construct(string $url, string $detail, ?\Throwable $previous = null)
    {
        $this->url = self::redact($url);
        parent::__construct(sprintf('cannot reach %s: %s', $this->url, $detail), 0, $previous);
    }

    public function errorCode(): string
    {
        return 'broker_unavailable';
    }

    /** The URL without its password: `amqp://guest:***@host/`. */
    public static function redact(string $url): string
    {
        return (string) preg_replace('~^([a-z][a-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@~i', '$1:***@', $url);
    }
}
