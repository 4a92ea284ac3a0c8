"""HMAC-SHA256 envelope signatures (spec/README.md, "Signing").

The signature covers the envelope's exact UTF-8 bytes as stored or sent, and travels
beside the envelope with a key id, so keys can be rotated: a runner holds a keyring of
every key id it accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

from .errors import ConfigError, SignatureError
from .wire import KEY_ID_PATTERN

_KEY_ID = re.compile(KEY_ID_PATTERN[:-1] + r"\Z")


def sign(body: bytes, key: bytes) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``body`` under ``key``."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str, key: bytes) -> bool:
    """True when ``signature`` is the HMAC-SHA256 of ``body`` under ``key`` (constant time)."""
    return hmac.compare_digest(sign(body, key), (signature or "").lower())


class Keyring:
    """Key ids mapped to secrets. Secrets are UTF-8 strings, used as their UTF-8 bytes."""

    def __init__(self, keys: Mapping[str, str | bytes] | None = None):
        self._keys: dict[str, bytes] = {}
        for kid, secret in (keys or {}).items():
            self.add(kid, secret)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Keyring:
        """Build from ``ID=SECRET`` strings (the CLI's ``--key``)."""
        ring = cls()
        for spec in specs:
            kid, sep, secret = spec.partition("=")
            if not sep or not secret:
                raise ConfigError(f"--key {spec!r}: expected ID=SECRET, for example --key k1=s3cret")
            ring.add(kid, secret)
        return ring

    def add(self, key_id: str, secret: str | bytes) -> None:
        if not _KEY_ID.match(key_id):
            raise ConfigError(f"key id {key_id!r}: must be 1-64 characters of A-Z a-z 0-9 . _ -")
        self._keys[key_id] = secret.encode() if isinstance(secret, str) else secret

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def sign(self, body: bytes, key_id: str) -> str:
        return sign(body, self._keys[key_id])

    def check(self, body: bytes, key_id: str | None, signature: str | None) -> None:
        """Raise :class:`SignatureError` unless ``body`` carries a valid signature from this keyring."""
        if not signature or not key_id:
            raise SignatureError("envelope is unsigned but this runner requires signatures (a keyring is configured)")
        key = self._keys.get(key_id)
        if key is None:
            raise SignatureError(f"envelope is signed with key id {key_id!r}, which this runner's keyring does not hold")
        if not verify(body, signature, key):
            raise SignatureError(f"signature does not match the envelope bytes (key id {key_id!r}); "
                                 "the envelope was changed after signing or signed with another secret")
