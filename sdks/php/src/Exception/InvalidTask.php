<?php

declare(strict_types=1);

namespace Phlask\Exception;

/**
 * The task cannot be enqueued: its envelope does not conform to spec/task.schema.json,
 * is larger than the envelope size limit, or the builder options are wrong.
 *
 * The message lists every problem as `path: problem`; {@see errors()} gives them one by one.
 */
final class InvalidTask extends PhlaskException
{
    /**
     * @param list<FieldError> $errors
     * @param string $reason `invalid`, or `too_large` when only the size is wrong
     *                       (the dead reason a runner would give it)
     */
    public function __construct(
        private readonly array $errors,
        private readonly string $reason = 'invalid',
        string $prefix = 'invalid task',
    ) {
        parent::__construct($prefix . ': ' . implode('; ', array_map('strval', $errors)));
    }

    public function errorCode(): string
    {
        return 'invalid_envelope';
    }

    /** @return list<FieldError> every problem, each with its JSON path */
    public function errors(): array
    {
        return $this->errors;
    }

    /** @return list<string> the JSON paths of the problems, in order */
    public function paths(): array
    {
        return array_map(static fn (FieldError $e): string => $e->path, $this->errors);
    }

    /** `invalid` or `too_large`. */
    public function reason(): string
    {
        return $this->reason;
    }
}
