<?php

declare(strict_types=1);

namespace Phlask;

use Phlask\Exception\ConfigError;

/**
 * A key id and its HMAC-SHA256 secret (spec/README.md, section 6). A producer signs every
 * envelope with one key; runners verify with a keyring holding the same id and secret.
 */
final class SigningKey
{
    /**
     * @param string $id     key id, 1-64 of A-Z a-z 0-9 . _ - (spec/wire.json signature.key_id_pattern)
     * @param string $secret the shared secret; its UTF-8 bytes key the HMAC
     * @throws ConfigError when the id or secret is unusable
     */
    public function __construct(
        public readonly string $id,
        #[\SensitiveParameter] private readonly string $secret,
    ) {
        if (!Wire::matches(Wire::PATTERN_KEY_ID, $id)) {
            throw new ConfigError(sprintf('signing key id %s: must be 1-64 characters of A-Z a-z 0-9 . _ -', json_encode($id, JSON_INVALID_UTF8_SUBSTITUTE)));
        }
        if ($secret === '') {
            throw new ConfigError("signing key $id: the secret is empty");
        }
    }

    /**
     * A key from queue configuration: a SigningKey, `[id, secret]`, `['id' => ..., 'secret' => ...]`
     * or an `ID=SECRET` string (as `phlask run --key` takes it); null for none.
     *
     * @throws ConfigError
     */
    public static function from(mixed $config): ?self
    {
        if ($config === null || $config instanceof self) {
            return $config;
        }
        if (is_string($config) && str_contains($config, '=')) {
            [$id, $secret] = explode('=', $config, 2);
            return new self($id, $secret);
        }
        if (is_array($config)) {
            $id = $config['id'] ?? $config[0] ?? null;
            $secret = $config['secret'] ?? $config[1] ?? null;
            if (is_string($id) && is_string($secret)) {
                return new self($id, $secret);
            }
        }
        throw new ConfigError("signing_key: give ['key-id', 'secret'], ['id' => 'key-id', 'secret' => '...'], 'key-id=secret' or a Phlask\\SigningKey");
    }

    /** The signature of $body: lowercase hex of HMAC-SHA256 over its exact bytes. */
    public function sign(string $body): string
    {
        return hash_hmac('sha256', $body, $this->secret);
    }

    /** True when $signature (hex, either case) is this key's signature of $body; constant time. */
    public function verify(string $body, string $signature): bool
    {
        return hash_equals($this->sign($body), strtolower($signature));
    }

    /** @return array<string, string> */
    public function __debugInfo(): array
    {
        return ['id' => $this->id, 'secret' => '***'];
    }
}
