<?php

declare(strict_types=1);

namespace Phlask\Tests;

use Phlask\SqliteQueue;
use Phlask\Tests\Support\Repo;
use Phlask\Wire;
use PHPUnit\Framework\TestCase;

/**
 * The constants this SDK copies from spec/ are the spec's: a change there fails here
 * until the SDK follows (the drift bullmq's PHP and Python copies suffered).
 */
final class WireTest extends TestCase
{
    private static function wire(): \stdClass
    {
        return Repo::load(Repo::spec('wire.json'));
    }

    private static function schema(): \stdClass
    {
        return Repo::load(Repo::spec('task.schema.json'));
    }

    public function testLimitsAndDefaultsAreWireJson(): void
    {
        $w = self::wire();
        $this->assertSame($w->protocol_version, Wire::PROTOCOL_VERSION);
        $this->assertSame($w->limits->envelope_bytes, Wire::ENVELOPE_BYTES);
        $this->assertSame($w->limits->code_chars, Wire::CODE_CHARS);
        $this->assertSame($w->limits->meta_entries, Wire::META_ENTRIES);
        $this->assertSame($w->limits->max_timeout_seconds, Wire::MAX_TIMEOUT_SECONDS);
        $this->assertSame($w->defaults->queue, Wire::DEFAULT_QUEUE);
        $this->assertSame($w->defaults->max_attempts, Wire::DEFAULT_MAX_ATTEMPTS);
        $this->assertSame($w->defaults->priority, Wire::DEFAULT_PRIORITY);
        $this->assertSame((array) $w->defaults->backoff, Wire::DEFAULT_BACKOFF);
        $this->assertSame($w->signature->algorithm, Wire::SIGNATURE_ALGORITHM);
        $this->assertSame($w->signature->key_id_pattern, Wire::PATTERN_KEY_ID);
    }

    public function testSchemaMembersAndPatterns(): void
    {
        $s = self::schema();
        $p = $s->properties;
        $this->assertSame(array_keys((array) $p), Wire::ENVELOPE_FIELDS);
        $this->assertSame($s->required, Wire::REQUIRED_FIELDS);
        $this->assertFalse($s->additionalProperties);
        $this->assertEquals([(object) ['required' => ['file']], (object) ['required' => ['code']]], $s->oneOf);
        $this->assertSame(Wire::PROTOCOL_VERSION, $p->phlask->const);

        $this->assertSame($p->id->pattern, Wire::PATTERN_ID);
        $this->assertSame($p->queue->pattern, Wire::PATTERN_QUEUE);
        $this->assertSame($p->lang->pattern, Wire::PATTERN_LANG);
        $this->assertSame($p->file->pattern, Wire::PATTERN_NO_NUL);
        $this->assertSame($p->args->items->pattern, Wire::PATTERN_NO_NUL);
        $this->assertSame($p->env->propertyNames->pattern, Wire::PATTERN_ENV_NAME);
        $this->assertSame($p->env->additionalProperties->pattern, Wire::PATTERN_NO_NUL);
        $this->assertSame($s->{'$defs'}->timestamp->pattern, Wire::PATTERN_TIMESTAMP);
        $this->assertSame('date-time', $s->{'$defs'}->timestamp->format);
        foreach (['not_before', 'expires_at', 'created_at'] as $name) {
            $this->assertSame('#/$defs/timestamp', $p->{$name}->{'$ref'});
        }

        $this->assertSame([$p->file->minLength, $p->file->maxLength], [Wire::FILE_MIN_LENGTH, Wire::FILE_MAX_LENGTH]);
        $this->assertSame([$p->code->minLength, $p->code->maxLength], [Wire::CODE_MIN_LENGTH, Wire::CODE_CHARS]);
        $this->assertSame([$p->timeout->exclusiveMinimum, $p->timeout->maximum], Wire::TIMEOUT_BOUNDS);
        $this->assertSame([$p->max_attempts->minimum, $p->max_attempts->maximum], Wire::MAX_ATTEMPTS_BOUNDS);
        $this->assertSame([$p->priority->minimum, $p->priority->maximum], Wire::PRIORITY_BOUNDS);
        $this->assertSame($p->meta->maxProperties, Wire::META_ENTRIES);
        $this->assertSame(array_keys((array) $p->backoff->properties), Wire::BACKOFF_FIELDS);
        $this->assertFalse($p->backoff->additionalProperties);
        foreach (Wire::BACKOFF_BOUNDS as $name => $bounds) {
            $b = $p->backoff->properties->{$name};
            $this->assertSame([$b->minimum, $b->maximum], $bounds, "backoff.$name");
            $this->assertSame(Wire::DEFAULT_BACKOFF[$name], $b->default);
        }
        $this->assertSame(array_keys((array) $p->producer->properties), Wire::PRODUCER_FIELDS);
        $this->assertFalse($p->producer->additionalProperties);
    }

    /** The validator hard-codes each member's type; fail when the schema changes one. */
    public function testSchemaTypesAreTheValidatorsTypes(): void
    {
        $expected = [
            'id' => 'string', 'queue' => 'string', 'lang' => 'string', 'file' => 'string', 'code' => 'string',
            'args' => 'array', 'env' => 'object', 'timeout' => 'number', 'max_attempts' => 'integer',
            'backoff' => 'object', 'priority' => 'integer', 'meta' => 'object', 'producer' => 'object',
        ];
        $p = self::schema()->properties;
        foreach ($expected as $name => $type) {
            $this->assertSame($type, $p->{$name}->type, $name);
        }
        $this->assertFalse(property_exists($p->input, 'type'), 'input is any JSON value');
        $this->assertFalse(property_exists($p->phlask, 'type'), 'phlask is checked by const');
        $this->assertSame('string', $p->args->items->type);
        $this->assertSame('string', $p->env->additionalProperties->type);
        $this->assertSame('string', $p->meta->additionalProperties->type);
        $this->assertSame('boolean', $p->backoff->properties->jitter->type);
        foreach (Wire::PRODUCER_FIELDS as $name) {
            $this->assertSame('string', $p->producer->properties->{$name}->type);
        }
    }

    public function testSqliteStatementsAreTheDocumentsBlocks(): void
    {
        $this->assertSame(self::sqlBlock('-- phlask:schema 1'), SqliteQueue::SCHEMA);
        $this->assertSame(self::sqlBlock('-- phlask:producer-insert'), SqliteQueue::PRODUCER_INSERT);
    }

    private static function sqlBlock(string $marker): string
    {
        $doc = (string) file_get_contents(Repo::spec('backends/sqlite.md'));
        preg_match_all('/^```sql\n(.*?)^```/ms', $doc, $m);
        $found = array_values(array_filter($m[1], static fn (string $b): bool => str_starts_with($b, $marker . "\n")));
        self::assertCount(1, $found, "spec/backends/sqlite.md must hold one sql block starting with $marker");
        return $found[0];
    }
}
