package ormplugin

import (
	"errors"
	"fmt"
	"strings"
)

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

	// ErrBindMissing is returned when a row-bound field (kms:"bind=...") is
	// written or read while the bound column's value is not known: zero
	// before insert, or not selected (or selected after the field) on read.
	ErrBindMissing = errors.New("ormplugin: row-bound value without its bound column")

	// ErrPlaintextRemains is returned by MigratePlaintext (and MigrateTable)
	// when plaintext values are still in the table after the run, for
	// example rows changed by writers without the plugin. Progress.Remaining
	// holds the count; run it again, or find them with VerifyTable.
	ErrPlaintextRemains = errors.New("ormplugin: plaintext values remain")
)

// DecryptError says which stored value could not be read: table, column
// and primary key, never the value. Err is (or wraps) ErrDecrypt,
// ErrNotCiphertext, ErrBindMissing or ErrKMS; match with errors.Is, find the
// location with errors.As.
type DecryptError struct {
	Table      string
	Column     string
	PrimaryKey string // "" when the statement did not read the primary key
	Err        error
}

func (e *DecryptError) Error() string {
	pk := e.PrimaryKey
	if pk == "" {
		pk = "primary key not selected"
	}
	return fmt.Sprintf("%s.%s (%s): %v", e.Table, e.Column, pk, e.Err)
}

func (e *DecryptError) Unwrap() error { return e.Err }

// maxListedErrors bounds how many DecryptErrors one statement reports.
const maxListedErrors = 10

// joinDecryptErrors makes one error of the failures of a statement: the
// first maxListedErrors by location, then a count.
func joinDecryptErrors(errs []*DecryptError) error {
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, 0, min(len(errs), maxListedErrors)+1)
	for i, e := range errs {
		if i == maxListedErrors {
			out = append(out, fmt.Errorf("ormplugin: and %d more undecryptable values (list them with kmsctl orm verify)", len(errs)-i))
			break
		}
		out = append(out, e)
	}
	if len(out) == 1 {
		return out[0]
	}
	return joinedErr{errs: out}
}

// joinedErr is errors.Join with "; " separators (one line in logs).
type joinedErr struct{ errs []error }

func (j joinedErr) Error() string {
	parts := make([]string, len(j.errs))
	for i, e := range j.errs {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (j joinedErr) Unwrap() []error { return j.errs }
