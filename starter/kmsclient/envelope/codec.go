package envelope

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// KMS is what the package needs from a kmsd client. *kmsclient.Client and
// *kmsclient.Cached both implement it; with a Cached, data keys come from
// its data-key cache (within its age, use and byte limits) and unwrapped
// keys from its decrypt cache.
type KMS interface {
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*kmsclient.DataKey, error)
	Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (*kmsclient.EncryptResult, error)
	Decrypt(ctx context.Context, blob []byte, encCtx map[string]string) (*kmsclient.DecryptResult, error)
	DecryptWithKeyID(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) (*kmsclient.DecryptResult, error)
	ReEncrypt(ctx context.Context, blob []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (*kmsclient.ReEncryptResult, error)
}

// sizedDataKeys is implemented by *kmsclient.Cached: a data key that
// counts the bytes it will protect against the cache's byte limit.
type sizedDataKeys interface {
	GenerateDataKeyFor(ctx context.Context, keyID string, encCtx map[string]string, n int64) (*kmsclient.DataKey, error)
}

// maxWraps bounds the wrapped-key memo of a Codec.
const maxWraps = 1024

// Codec encrypts and decrypts streams with data keys from one KMS. It is
// safe for concurrent use; each Writer and Reader is not.
type Codec struct {
	kms KMS

	mu    sync.Mutex
	wraps map[[32]byte]wrapped // extra recipients of cached data keys
}

type wrapped struct {
	keyID string
	blob  []byte
}

// New returns a Codec over kms.
func New(kms KMS) *Codec {
	return &Codec{kms: kms, wraps: make(map[[32]byte]wrapped)}
}

// wrapKey returns keyID's copy of the data key dk (whose primary wrapped
// form is dk.CiphertextBlob). When the data key comes from a cache, the
// same data key is wrapped for the same extra key many times: the Codec
// remembers those wrapped keys (ciphertext only, never the data key), so
// a cached data key costs no KMS call for any recipient.
func (c *Codec) wrapKey(ctx context.Context, dk *kmsclient.DataKey, keyID string, encCtx map[string]string, memo bool) (Recipient, error) {
	var id [32]byte
	if memo {
		h := sha256.New()
		put := func(s string) {
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
			h.Write([]byte(s))
		}
		put(string(dk.CiphertextBlob))
		put(keyID)
		ks := slices.Sorted(maps.Keys(encCtx))
		for _, k := range ks {
			put(k)
			put(encCtx[k])
		}
		h.Sum(id[:0])
		c.mu.Lock()
		w, ok := c.wraps[id]
		c.mu.Unlock()
		if ok {
			return Recipient{KeyID: w.keyID, WrappedKey: w.blob}, nil
		}
	}
	res, err := c.kms.Encrypt(ctx, keyID, dk.Plaintext, encCtx)
	if err != nil {
		return Recipient{}, fmt.Errorf("envelope: wrap the data key for %s: %w", keyID, err)
	}
	if memo {
		c.mu.Lock()
		if len(c.wraps) >= maxWraps {
			clear(c.wraps)
		}
		c.wraps[id] = wrapped{keyID: res.KeyID, blob: res.CiphertextBlob}
		c.mu.Unlock()
	}
	return Recipient{KeyID: res.KeyID, WrappedKey: res.CiphertextBlob}, nil
}

// newDataKey gets a data key under keyID and wraps it for every extra key.
func (c *Codec) newDataKey(ctx context.Context, keyID string, extra []string, encCtx map[string]string, sizeHint int64) ([]byte, []Recipient, error) {
	var dk *kmsclient.DataKey
	var err error
	cached := false
	if s, ok := c.kms.(sizedDataKeys); ok {
		cached = true
		dk, err = s.GenerateDataKeyFor(ctx, keyID, encCtx, max(sizeHint, 0))
	} else {
		dk, err = c.kms.GenerateDataKey(ctx, keyID, encCtx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: data key under %s: %w", keyID, err)
	}
	if len(dk.Plaintext) != dataKeySize {
		clear(dk.Plaintext)
		return nil, nil, fmt.Errorf("envelope: data key under %s: %d bytes, want %d", keyID, len(dk.Plaintext), dataKeySize)
	}
	rs := []Recipient{{KeyID: dk.KeyID, WrappedKey: dk.CiphertextBlob}}
	for _, k := range extra {
		r, err := c.wrapKey(ctx, dk, k, encCtx, cached)
		if err != nil {
			clear(dk.Plaintext)
			return nil, nil, err
		}
		if !hasRecipient(rs, r.KeyID) {
			rs = append(rs, r)
		}
	}
	return dk.Plaintext, rs, nil
}

func hasRecipient(rs []Recipient, keyID string) bool {
	for _, r := range rs {
		if r.KeyID == keyID {
			return true
		}
	}
	return false
}

// unwrap asks KMS for the data key of h, trying the recipients in order.
// With keyIDs, only those master keys are accepted (KMS checks each);
// otherwise KMS must confirm the key id the recipient names.
func (c *Codec) unwrap(ctx context.Context, h *Header, keyIDs []string) ([]byte, error) {
	var errs []error
	for i, r := range h.Recipients {
		tries := keyIDs
		if len(tries) == 0 {
			tries = []string{""}
		}
		for _, k := range tries {
			var res *kmsclient.DecryptResult
			var err error
			if k == "" {
				res, err = c.kms.Decrypt(ctx, r.WrappedKey, h.Context)
			} else {
				res, err = c.kms.DecryptWithKeyID(ctx, k, r.WrappedKey, h.Context)
			}
			if err == nil && (res.KeyID != r.KeyID || len(res.Plaintext) != dataKeySize) {
				clear(res.Plaintext)
				err = fmt.Errorf("%w: KMS unwrapped it under %q", kmsclient.ErrInvalidCiphertext, res.KeyID)
			}
			if err == nil {
				return res.Plaintext, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if k == "" {
				errs = append(errs, fmt.Errorf("recipient %d (key %s): %w", i+1, r.KeyID, err))
			} else {
				errs = append(errs, fmt.Errorf("recipient %d (key %s) via %s: %w", i+1, r.KeyID, k, err))
			}
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrNoRecipient, errors.Join(errs...))
}
