<?php

declare(strict_types=1);

/*
 * Autoloader for using phlask without Composer (a checkout, or Debian's packaged
 * dependencies): PSR-4 `Phlask\` from src/, and php-amqplib from Debian's
 * /usr/share/php when Composer has not already provided it.
 *
 * With Composer, use vendor/autoload.php instead; this file is not needed.
 */

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Phlask\\', 7) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 7)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});

if (!class_exists(\PhpAmqpLib\Connection\AMQPStreamConnection::class)) {
    // Debian's php-amqplib ships its own autoloader (dpkg -L php-amqplib).
    foreach (array_merge(explode(PATH_SEPARATOR, (string) get_include_path()), ['/usr/share/php']) as $dir) {
        if (is_file($dir . '/PhpAmqpLib/autoload.php')) {
            require_once $dir . '/PhpAmqpLib/autoload.php';
            break;
        }
    }
}
