<?php

declare(strict_types=1);

// Test bootstrap: the SDK's own autoloader (src/ and Debian's php-amqplib), then the
// test helpers under Phlask\Tests\ (PSR-4 from tests/).
require dirname(__DIR__) . '/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Phlask\\Tests\\')) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen('Phlask\\Tests\\'))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
