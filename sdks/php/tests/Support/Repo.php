<?php

declare(strict_types=1);

namespace Phlask\Tests\Support;

/** Where the shared contract lives: the repository's spec/ and conformance/ (read in place, never copied). */
final class Repo
{
    public static function root(): string
    {
        return dirname(__DIR__, 4);
    }

    public static function vectors(): string
    {
        $dir = getenv('PHLASK_CONFORMANCE_DIR');
        return ($dir !== false && $dir !== '') ? rtrim($dir, '/') . '/vectors' : self::root() . '/conformance/vectors';
    }

    public static function spec(string $file = ''): string
    {
        return self::root() . '/spec' . ($file === '' ? '' : '/' . $file);
    }

    /** Parse a JSON file with objects as stdClass, so `{}` and `[]` stay distinct. */
    public static function load(string $path): mixed
    {
        $text = file_get_contents($path);
        if ($text === false) {
            throw new \RuntimeException("cannot read $path");
        }
        return json_decode($text, false, 4096, JSON_THROW_ON_ERROR);
    }

    /**
     * Every vector file of a kind, globbed so that files added later run too.
     *
     * @return list<string>
     */
    public static function vectorFiles(string $kind): array
    {
        $files = glob(self::vectors() . '/' . $kind . '/*.json') ?: [];
        sort($files);
        if ($files === []) {
            throw new \RuntimeException('no vector files under ' . self::vectors() . '/' . $kind);
        }
        return $files;
    }
}
