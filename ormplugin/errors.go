package ormplugin

import "errors"

// Sentinel errors. Match them with errors.Is.
var (
	// ErrDecrypt is the one opaque error for a stored value that cannot be
	// decrypted: malformed, unknown format, unknown data key, wrong table or
	// column, or tampered. It never says which.
	ErrDecrypt = errors.New("ormplugin: cannot decrypt stored value")

	// ErrNotCiphertext is returned when a stored value is not in the
	// ormplugin format and plaintext reads were not allowed
	// (Config.AllowPlaintextReads).
	ErrNotCiphertext = errors.New("ormplugin: stored value is not ormplugin ciphertext")

	// ErrKMS wraps every failure to reach or use the KMS. Nothing is written
	// when it is returned by a write.
	ErrKMS = errors.New("ormplugin: kms unavailable or refused the request")

	// ErrNoPlugin is returned when an encrypted field is serialized outside a
	// statement of a *gorm.DB that uses the plugin. The most common cause is
	// a struct WHERE condition on an encrypted field (db.Where(&User{Email: x})),
	// which can never match randomized ciphertext: use Equal instead.
	ErrNoPlugin = errors.New("ormplugin: encrypted field used outside a plugin statement (for equality search use ormplugin.Equal)")

	// ErrEncryptedCondition is returned when a query has a condition built by
	// GORM from a struct (db.Where(&User{Email: x})) on an encrypted field:
	// GORM would turn it into "email IS NULL". Use Equal instead.
	ErrEncryptedCondition = errors.New("ormplugin: struct condition on an encrypted field never matches (use ormplugin.Equal)")

	// ErrUnsupportedType is returned for a field or value type the plugin
	// cannot encode.
	ErrUnsupportedType = errors.New("ormplugin: unsupported value type")

	// ErrUnsupported is returned for GORM operations that cannot keep the
	// encryption guarantees (for example Create from a map, or a SQL
	// expression assigned to an encrypted column).
	ErrUnsupported = errors.New("ormplugin: operation not supported on encrypted fields")

	// ErrConfig is returned for an invalid Config or an invalid kms struct tag.
	ErrConfig = errors.New("ormplugin: invalid configuration")

	// ErrColumnTooSmall is returned by MigratePlaintext when a target column
	// cannot hold the ciphertext of its longest value. Nothing is written.
	ErrColumnTooSmall = errors.New("ormplugin: column too small for ciphertext")
)
