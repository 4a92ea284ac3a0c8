<?php

declare(strict_types=1);

namespace Phlask\Tests;

use PHPUnit\Framework\TestCase;

/** The package as users get it: composer.json, PSR-4 layout, and the Composer-less autoloader. */
final class PackageTest extends TestCase
{
    private const ROOT = __DIR__ . '/..';

    public function testComposerJsonDeclaresThePackage(): void
    {
        $composer = json_decode((string) file_get_contents(self::ROOT . '/composer.json'), true, 512, JSON_THROW_ON_ERROR);
        $this->assertSame('phlask/phlask', $composer['name']);
        $this->assertSame(['Phlask\\' => 'src/'], $composer['autoload']['psr-4']);
        $this->assertSame('>=8.1', $composer['require']['php']);
        foreach (['ext-json', 'ext-mbstring', 'ext-pdo_sqlite', 'ext-mongodb', 'php-amqplib/php-amqplib'] as $package) {
            $this->assertArrayHasKey($package, $composer['require']);
        }
    }

    public function testEveryClassLivesWherePsr4SaysAndIsDocumented(): void
    {
        $files = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(self::ROOT . '/src', \FilesystemIterator::SKIP_DOTS));
        $count = 0;
        foreach ($files as $file) {
            $relative = substr($file->getPathname(), strlen(self::ROOT . '/src/'));
            $class = 'Phlask\\' . str_replace(['/', '.php'], ['\\', ''], $relative);
            $this->assertTrue(class_exists($class), "$relative does not define $class");
            $this->assertNotFalse((new \ReflectionClass($class))->getDocComment(), "$class has no doc comment");
            $count++;
        }
        $this->assertGreaterThan(10, $count);
    }

    public function testTheAutoloaderWorksWithoutComposerOrPhpunit(): void
    {
        $code = 'require ' . var_export(realpath(self::ROOT . '/autoload.php'), true) . ';'
            . '$t = Phlask\Task::factory(["lang" => "php", "file" => "x.php"]);'
            . 'echo $t->validate()->id(), " ", class_exists(PhpAmqpLib\Message\AMQPMessage::class) ? "amqplib" : "none";';
        $out = shell_exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg($code) . ' 2>&1');
        $this->assertMatchesRegularExpression('/^[0-9a-f-]{36} amqplib$/D', (string) $out);
    }
}
