package auth

import (
	"crypto/hmac"
	"crypto/sha256"
)

// hmacSum is HMAC-SHA256 of data under key, the reference the signing-key
// tests derive keys with.
func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
