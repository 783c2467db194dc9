package p11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/miekg/pkcs11"

	"github.com/kmsgo/kmsgo/hsm"
)

const (
	maxIDLen     = 255
	maxPlaintext = hsm.MaxSealedSize - hsm.SealedOverhead
	maxRandom    = 64 << 10
	findBatch    = 64
)

func checkID(id string) error {
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) || strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("%w: key id must be 1-%d bytes of UTF-8 without NUL", hsm.ErrInvalidArgument, maxIDLen)
	}
	return nil
}

// keyTemplate is the attribute set of every key this package creates.
func keyTemplate(id string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, id),
	}
}

// find returns up to max handles of AES secret keys whose CKA_ID is id.
func (b *Backend) find(s pkcs11.SessionHandle, id string, max int) ([]pkcs11.ObjectHandle, error) {
	ctx := b.mod.ctx
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}
	if err := ctx.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	objs, _, err := ctx.FindObjects(s, max)
	if ferr := ctx.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		// Private objects are invisible without a login: "not found" from a
		// logged-out session is a lost login, not a missing key.
		if err := b.checkLogin(s); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

func (b *Backend) checkLogin(s pkcs11.SessionHandle) error {
	info, err := b.mod.ctx.GetSessionInfo(s)
	if err != nil {
		return err
	}
	if !loggedIn(info) {
		return pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
	}
	return nil
}

// findKey returns the one key object with CKA_ID id.
func (b *Backend) findKey(s pkcs11.SessionHandle, id string) (pkcs11.ObjectHandle, error) {
	objs, err := b.find(s, id, 2)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 0:
		return 0, hsm.ErrKeyNotFound
	case 1:
		return objs[0], nil
	default:
		return 0, fmt.Errorf("%w: %q", ErrDuplicateKey, id)
	}
}

// withKey runs fn with the handle of key id, from the cache when possible.
// A cached handle that the token rejects is dropped and looked up again once.
// It holds objMu for reading: SoftHSM answers a key used while another
// session destroys it with arbitrary errors (CKR_KEY_TYPE_INCONSISTENT,
// CKR_MECHANISM_INVALID, ...) instead of CKR_OBJECT_HANDLE_INVALID.
func (b *Backend) withKey(s pkcs11.SessionHandle, id string, fn func(h pkcs11.ObjectHandle) error) error {
	b.objMu.RLock()
	defer b.objMu.RUnlock()
	if v, ok := b.handles.Load(id); ok {
		err := fn(v.(pkcs11.ObjectHandle))
		if !handleInvalid(err) {
			return err
		}
		b.handles.CompareAndDelete(id, v)
	}
	h, err := b.findKey(s, id)
	if err != nil {
		return err
	}
	b.handles.Store(id, h)
	err = fn(h)
	if handleInvalid(err) {
		// Destroyed between C_FindObjects and its use (by another process).
		b.handles.CompareAndDelete(id, h)
		return fmt.Errorf("%w: %q", hsm.ErrKeyNotFound, id)
	}
	return err
}

func handleInvalid(err error) bool {
	return hasCode(err, pkcs11.CKR_KEY_HANDLE_INVALID) || hasCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID)
}

// lockedAttrs make a key object unmodifiable and uncopyable, so that
// neither its attributes (CKA_SENSITIVE, usage flags, label) can be changed
// nor a copy with other attributes made with C_CopyObject. Tokens that do
// not know them get the key without (see withLocked).
func lockedAttrs() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_COPYABLE, false),
	}
}

// withLocked runs mk with the lockedAttrs added to tmpl, and once more
// without them if the token rejects them as a template problem.
func withLocked(tmpl []*pkcs11.Attribute, mk func([]*pkcs11.Attribute) (pkcs11.ObjectHandle, error)) (pkcs11.ObjectHandle, error) {
	h, err := mk(append(append([]*pkcs11.Attribute(nil), tmpl...), lockedAttrs()...))
	if hasCode(err, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID) || hasCode(err, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID) ||
		hasCode(err, pkcs11.CKR_TEMPLATE_INCONSISTENT) || hasCode(err, pkcs11.CKR_ATTRIBUTE_READ_ONLY) {
		return mk(tmpl)
	}
	return h, err
}

func (b *Backend) generate(s pkcs11.SessionHandle, id string, bits int) (pkcs11.ObjectHandle, error) {
	tmpl := append(keyTemplate(id), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, bits/8))
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}
	return withLocked(tmpl, func(t []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		return b.mod.ctx.GenerateKey(s, mech, t)
	})
}

// GenerateKey creates a persistent, sensitive, non-extractable AES key of
// bits (128 or 256) in the token under id.
func (b *Backend) GenerateKey(ctx context.Context, id string, bits int) error {
	if err := checkID(id); err != nil {
		return err
	}
	if bits != 128 && bits != 256 {
		return fmt.Errorf("%w: AES key size %d bits", hsm.ErrInvalidArgument, bits)
	}
	return b.create(ctx, "generate key", id, func(s pkcs11.SessionHandle) (pkcs11.ObjectHandle, error) {
		return b.generate(s, id, bits)
	})
}

// ImportKey stores 16 or 32 bytes of AES material under id as a sensitive,
// non-extractable token key. The caller keeps ownership of material.
func (b *Backend) ImportKey(ctx context.Context, id string, material []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	if len(material) != 16 && len(material) != 32 {
		return fmt.Errorf("%w: AES key material of %d bytes", hsm.ErrInvalidArgument, len(material))
	}
	return b.create(ctx, "import key", id, func(s pkcs11.SessionHandle) (pkcs11.ObjectHandle, error) {
		value := make([]byte, len(material))
		copy(value, material)
		defer hsm.Zero(value)
		tmpl := append(keyTemplate(id), pkcs11.NewAttribute(pkcs11.CKA_VALUE, value))
		return withLocked(tmpl, func(t []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
			return b.mod.ctx.CreateObject(s, t)
		})
	})
}

func (b *Backend) create(ctx context.Context, op, id string, mk func(pkcs11.SessionHandle) (pkcs11.ObjectHandle, error)) error {
	return b.withObjects(ctx, op, func(s pkcs11.SessionHandle) error {
		_, err := b.findKey(s, id)
		switch {
		case err == nil, errors.Is(err, ErrDuplicateKey):
			return fmt.Errorf("%w: %q", hsm.ErrKeyExists, id)
		case !errors.Is(err, hsm.ErrKeyNotFound):
			return err
		}
		h, err := mk(s)
		if err != nil {
			return err
		}
		b.handles.Store(id, h)
		return nil
	})
}

// DestroyKey removes every key object with id. It refuses to destroy the
// root key.
func (b *Backend) DestroyKey(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if id == b.cfg.RootKeyID {
		return fmt.Errorf("%w: refusing to destroy the root key", hsm.ErrInvalidArgument)
	}
	return b.withObjects(ctx, "destroy key", func(s pkcs11.SessionHandle) error {
		b.handles.Delete(id)
		objs, err := b.find(s, id, findBatch)
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			return fmt.Errorf("%w: %q", hsm.ErrKeyNotFound, id)
		}
		for _, h := range objs {
			if err := b.mod.ctx.DestroyObject(s, h); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListKeys returns the sorted ids (CKA_LABEL) of all AES secret keys in the
// token that start with prefix.
func (b *Backend) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	var ids []string
	err := b.withObjects(ctx, "list keys", func(s pkcs11.SessionHandle) error {
		p := b.mod.ctx
		tmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		}
		if err := p.FindObjectsInit(s, tmpl); err != nil {
			return err
		}
		var all []pkcs11.ObjectHandle
		for {
			objs, _, err := p.FindObjects(s, findBatch)
			if err != nil {
				_ = p.FindObjectsFinal(s)
				return err
			}
			all = append(all, objs...)
			if len(objs) < findBatch {
				break
			}
		}
		if err := p.FindObjectsFinal(s); err != nil {
			return err
		}
		if len(all) == 0 {
			if err := b.checkLogin(s); err != nil {
				return err
			}
		}
		for _, h := range all {
			attrs, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
			if vanished(err) {
				// Destroyed meanwhile (by another process). If the
				// session itself is fine this was no device fault.
				if lerr := b.checkLogin(s); lerr != nil {
					return lerr
				}
				continue
			}
			if err != nil {
				return err
			}
			if len(attrs) == 1 {
				if label := string(attrs[0].Value); label != "" && strings.HasPrefix(label, prefix) {
					ids = append(ids, label)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ids == nil {
		return []string{}, nil
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// vanished reports errors that SoftHSM and others give for an object that
// was destroyed between C_FindObjects and C_GetAttributeValue.
func vanished(err error) bool {
	return hasCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || hasCode(err, pkcs11.CKR_GENERAL_ERROR) ||
		hasCode(err, pkcs11.CKR_BUFFER_TOO_SMALL)
}

// Encrypt seals plaintext under key id with AES-GCM, a fresh random 96-bit
// IV and aad. The result is the raw parts (IV and ciphertext || tag).
func (b *Backend) Encrypt(ctx context.Context, id string, plaintext, aad []byte) (hsm.Sealed, error) {
	if err := checkID(id); err != nil {
		return hsm.Sealed{}, err
	}
	if id == b.cfg.RootKeyID && hsm.IsWrapAAD(aad) {
		return hsm.Sealed{}, fmt.Errorf("%w: AAD prefix reserved for WrapKey", hsm.ErrInvalidArgument)
	}
	return b.encrypt(ctx, "encrypt", id, plaintext, aad)
}

func (b *Backend) encrypt(ctx context.Context, op, id string, plaintext, aad []byte) (hsm.Sealed, error) {
	if len(plaintext) > maxPlaintext {
		return hsm.Sealed{}, fmt.Errorf("%w: plaintext longer than %d bytes", hsm.ErrInvalidArgument, maxPlaintext)
	}
	var out hsm.Sealed
	err := b.with(ctx, op, func(s pkcs11.SessionHandle) error {
		return b.withKey(s, id, func(h pkcs11.ObjectHandle) error {
			var err error
			out, err = b.gcmSeal(s, h, plaintext, aad)
			return err
		})
	})
	if err != nil {
		return hsm.Sealed{}, err
	}
	return out, nil
}

func (b *Backend) gcmSeal(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, plaintext, aad []byte) (hsm.Sealed, error) {
	iv := make([]byte, hsm.IVSize)
	if _, err := rand.Read(iv); err != nil {
		return hsm.Sealed{}, fmt.Errorf("p11: random IV: %w", err)
	}
	params := pkcs11.NewGCMParams(iv, aad, hsm.TagSize*8)
	defer params.Free()
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
	p := b.mod.ctx
	if err := p.EncryptInit(s, mech, h); err != nil {
		return hsm.Sealed{}, err
	}
	ct, err := p.Encrypt(s, plaintext)
	if err != nil {
		return hsm.Sealed{}, err
	}
	used := params.IV() // the HSM may have substituted its own IV
	if len(used) != hsm.IVSize || len(ct) != len(plaintext)+hsm.TagSize {
		return hsm.Sealed{}, fmt.Errorf("p11: unexpected AES-GCM output (IV %d bytes, ciphertext %d bytes)", len(used), len(ct))
	}
	return hsm.Sealed{IV: used, Ciphertext: ct}, nil
}

// Decrypt opens the parts made by Encrypt under key id with aad. Every
// authentication failure and every part of the wrong size is
// hsm.ErrDecrypt; a missing key is hsm.ErrKeyNotFound.
func (b *Backend) Decrypt(ctx context.Context, id string, sealed hsm.Sealed, aad []byte) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if id == b.cfg.RootKeyID && hsm.IsWrapAAD(aad) {
		return nil, hsm.ErrDecrypt
	}
	return b.decrypt(ctx, "decrypt", id, sealed, aad)
}

// decrypt opens sb. Parts of the wrong size are refused before any session
// is taken: a module must never see an IV or tag length the caller chose.
func (b *Backend) decrypt(ctx context.Context, op, id string, sb hsm.Sealed, aad []byte) ([]byte, error) {
	if sb.Check() != nil {
		return nil, hsm.ErrDecrypt
	}
	var out []byte
	err := b.with(ctx, op, func(s pkcs11.SessionHandle) error {
		err := b.withKey(s, id, func(h pkcs11.ObjectHandle) error {
			params := pkcs11.NewGCMParams(sb.IV, aad, hsm.TagSize*8)
			defer params.Free()
			mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
			p := b.mod.ctx
			if err := p.DecryptInit(s, mech, h); err != nil {
				return err
			}
			var err error
			out, err = p.Decrypt(s, sb.Ciphertext)
			if hasCode(err, pkcs11.CKR_GENERAL_ERROR) || hasCode(err, pkcs11.CKR_FUNCTION_FAILED) {
				// SoftHSM reports a GCM tag mismatch as CKR_GENERAL_ERROR.
				// Bad input must never look like a device fault: that
				// would let any caller force a module re-initialise.
				out = nil
				return hsm.ErrDecrypt
			}
			return err
		})
		if err == nil || isFault(err) || errors.Is(err, hsm.ErrKeyNotFound) || errors.Is(err, ErrDuplicateKey) {
			return err
		}
		var pe pkcs11.Error
		if errors.As(err, &pe) {
			return hsm.ErrDecrypt // opaque; with() still discards the session
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WrapKey seals material under the root key with AAD hsm.WrapAAD(aad).
func (b *Backend) WrapKey(ctx context.Context, material, aad []byte) ([]byte, error) {
	if len(material) == 0 {
		return nil, fmt.Errorf("%w: empty key material", hsm.ErrInvalidArgument)
	}
	out, err := b.encrypt(ctx, "wrap key", b.cfg.RootKeyID, material, hsm.WrapAAD(aad))
	if err != nil {
		return nil, b.rootErr("wrap key", err)
	}
	return out.Encode(), nil
}

// UnwrapKey reverses WrapKey (a framed blob). The caller must hsm.Zero the
// result.
func (b *Backend) UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	sb, err := hsm.ParseSealed(wrapped)
	if err != nil {
		return nil, hsm.ErrDecrypt
	}
	out, err := b.decrypt(ctx, "unwrap key", b.cfg.RootKeyID, sb, hsm.WrapAAD(aad))
	return out, b.rootErr("unwrap key", err)
}

// rootErr turns a vanished root key into "HSM unavailable": without it
// nothing stored outside the HSM can be read, and recovery re-checks it.
func (b *Backend) rootErr(op string, err error) error {
	if errors.Is(err, hsm.ErrKeyNotFound) {
		cause := fmt.Errorf("%w: %q", ErrRootKeyMissing, b.cfg.RootKeyID)
		b.fault(op, cause)
		return unavailable(op, cause)
	}
	return err
}

// Random returns n bytes from the token's RNG (C_GenerateRandom).
func (b *Backend) Random(ctx context.Context, n int) ([]byte, error) {
	if n < 0 || n > maxRandom {
		return nil, fmt.Errorf("%w: random length %d", hsm.ErrInvalidArgument, n)
	}
	if n == 0 {
		return []byte{}, nil
	}
	var out []byte
	err := b.with(ctx, "random", func(s pkcs11.SessionHandle) error {
		var err error
		out, err = b.mod.ctx.GenerateRandom(s, n)
		if err == nil && len(out) != n {
			err = fmt.Errorf("p11: C_GenerateRandom returned %d of %d bytes", len(out), n)
		}
		return err
	})
	return out, err
}
