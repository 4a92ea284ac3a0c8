package phlask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Sign returns the signature of an envelope (spec/README.md section 6): the lowercase hex
// HMAC-SHA256 of its exact bytes, keyed with the UTF-8 bytes of secret. Queues opened
// with WithSigningKey sign every envelope they push; Sign is for tools and tests.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature (hex, either case) is the signature of body under
// secret, comparing in constant time.
func Verify(body []byte, signature, secret string) bool {
	want := Sign(body, secret)
	return hmac.Equal([]byte(want), []byte(strings.ToLower(signature)))
}

// ValidKeyID reports whether id can name a signing key: 1-64 of A-Z a-z 0-9 . _ -
// (spec/wire.json signature.key_id_pattern).
func ValidKeyID(id string) bool { return keyIDRegex.MatchString(id) }
