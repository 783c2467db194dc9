package awsapi

import (
	"fmt"
	"strings"

	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// MaxKeyRefLen bounds a KeyId parameter (AWS's limit).
const MaxKeyRefLen = 2048

// KeyRef is a parsed key reference: exactly one of KeyID or Alias is set.
type KeyRef struct {
	KeyID string // a key id
	Alias string // a full alias name, "alias/orders"
}

// String returns the core's form of the reference (key id or alias name).
func (r KeyRef) String() string {
	if r.Alias != "" {
		return r.Alias
	}
	return r.KeyID
}

// Partition is the ARN partition kmsd uses.
const Partition = "aws"

// ARNs builds and parses the ARNs of one deployment.
type ARNs struct {
	Region  string
	Account string
}

// Key returns the key ARN of id.
func (a ARNs) Key(id string) string {
	return "arn:" + Partition + ":kms:" + a.Region + ":" + a.Account + ":key/" + id
}

// Alias returns the alias ARN of name ("alias/orders").
func (a ARNs) Alias(name string) string {
	return "arn:" + Partition + ":kms:" + a.Region + ":" + a.Account + ":" + name
}

// ParseKeyRef parses a KeyId parameter: a key id, "alias/<name>", a key ARN
// or an alias ARN. Aliases (by name or ARN) are accepted only when
// allowAlias is set, as AWS accepts them only for some operations. Errors
// wrap ErrInvalidKeyRef and an *Error: ValidationException for an empty or
// over-long value, InvalidArnException for a malformed ARN,
// NotFoundException for anything that cannot name a key here (a malformed
// key id, an alias where none is allowed, or an ARN of another region or
// account).
func (a ARNs) ParseKeyRef(s string, allowAlias bool) (KeyRef, error) {
	fail := func(e *Error) (KeyRef, error) { return KeyRef{}, fmt.Errorf("%w: %w", ErrInvalidKeyRef, e) }
	switch {
	case s == "":
		return fail(validationErr("KeyId is required"))
	case len(s) > MaxKeyRefLen:
		return fail(validationErr("KeyId must be at most %d characters", MaxKeyRefLen))
	}
	ref := s
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 || parts[1] == "" || parts[2] != "kms" || parts[5] == "" {
			return fail(awsErr(ExcInvalidArn, "%s is not a valid KMS key or alias ARN", quote(s)))
		}
		res := parts[5]
		if !strings.HasPrefix(res, "key/") && !strings.HasPrefix(res, kms.AliasPrefix) {
			return fail(awsErr(ExcInvalidArn, "%s is not a valid KMS key or alias ARN", quote(s)))
		}
		if parts[1] != Partition || parts[3] != a.Region || parts[4] != a.Account {
			return fail(awsErr(ExcNotFound, "%s does not exist", quote(s)))
		}
		if id, ok := strings.CutPrefix(res, "key/"); ok {
			if !kms.ValidKeyID(id) {
				return fail(awsErr(ExcNotFound, "Invalid keyId %s", quote(s)))
			}
			return KeyRef{KeyID: id}, nil
		}
		ref = res
	}
	if strings.HasPrefix(ref, kms.AliasPrefix) {
		if !allowAlias {
			return fail(awsErr(ExcNotFound, "Invalid keyId %s: this operation takes a key id or key ARN", quote(s)))
		}
		if !kms.ValidAliasName(ref) {
			return fail(awsErr(ExcNotFound, "Alias %s is not found", quote(s)))
		}
		return KeyRef{Alias: ref}, nil
	}
	if !kms.ValidKeyID(ref) {
		return fail(awsErr(ExcNotFound, "Invalid keyId %s", quote(s)))
	}
	return KeyRef{KeyID: ref}, nil
}

// quote returns s quoted, cut to 64 bytes of valid UTF-8, for messages.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return fmt.Sprintf("%q", strings.ToValidUTF8(s, "?"))
}
