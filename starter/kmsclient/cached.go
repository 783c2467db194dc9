package kmsclient

import (
	"context"

	"github.com/kmsgo/kmsgo/starter/kmsclient/dkcache"
)

// CacheConfig sets the limits of the two caches of a Cached client. Zero
// values mean the dkcache defaults (data keys: 5 min, 1<<20 uses, 64 GiB;
// decrypt results: 5 min TTL, 1000 entries, 16 MiB).
type CacheConfig struct {
	DataKeys dkcache.DataKeyConfig
	Decrypt  dkcache.DecryptConfig
}

// Cached is a Client with a data-key cache and a decrypt cache in front of
// GenerateDataKey and Decrypt. Every other method is the embedded Client's.
//
// Cached.GenerateDataKey reuses a data key for the same (key id or alias,
// encryption context) within the DataKeys limits; each call counts one use.
// GenerateDataKeyFor also counts the bytes the key will protect. Cached
// Decrypt serves repeated (ciphertext, context) pairs from memory. A data
// key generated here is also put in the decrypt cache under its
// CiphertextBlob, so reading back what was just written needs no round
// trip. Errors are never cached.
//
// Every returned Plaintext is the caller's own copy: clear it when done.
// A hit skips the server, and with it the server's audit record and policy
// check: give each set of credentials its own Cached, and keep the limits
// short enough that disabling a key takes effect in time for you. A key
// cached under an alias keeps being used until it expires even if the alias
// is moved. Safe for concurrent use.
type Cached struct {
	*Client
	dataKeys *dkcache.DataKeyCache
	decrypts *dkcache.DecryptCache
}

// NewCached wraps c with caches configured by cfg.
func NewCached(c *Client, cfg CacheConfig) (*Cached, error) {
	dk, err := dkcache.NewDataKeyCache(cfg.DataKeys)
	if err != nil {
		return nil, err
	}
	dc, err := dkcache.NewDecryptCache(cfg.Decrypt)
	if err != nil {
		return nil, err
	}
	return &Cached{Client: c, dataKeys: dk, decrypts: dc}, nil
}

// GenerateDataKey is GenerateDataKeyFor with an unknown size (0 bytes).
func (c *Cached) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	return c.GenerateDataKeyFor(ctx, keyID, encCtx, 0)
}

// GenerateDataKeyFor returns a data key for (keyID, encCtx) that will
// protect n plaintext bytes: a cached one while it is within MaxAge,
// MaxUses and MaxBytes, otherwise a new one from kmsd (which is cached).
func (c *Cached) GenerateDataKeyFor(ctx context.Context, keyID string, encCtx map[string]string, n int64) (*DataKey, error) {
	if dk, ok := c.dataKeys.Get(keyID, encCtx, n); ok {
		return &DataKey{KeyID: dk.KeyID, KeyVersion: dk.KeyVersion, Plaintext: dk.Plaintext, CiphertextBlob: dk.CiphertextBlob}, nil
	}
	dk, err := c.Client.GenerateDataKey(ctx, keyID, encCtx)
	if err != nil {
		return nil, err
	}
	c.dataKeys.Put(keyID, encCtx, dkcache.DataKey{KeyID: dk.KeyID, KeyVersion: dk.KeyVersion, Plaintext: dk.Plaintext, CiphertextBlob: dk.CiphertextBlob}, n)
	c.decrypts.Put(dk.CiphertextBlob, encCtx, dkcache.Decrypted{KeyID: dk.KeyID, KeyVersion: dk.KeyVersion, Plaintext: dk.Plaintext})
	return dk, nil
}

// Decrypt returns a cached result for (blob, encCtx) or asks kmsd and
// caches the answer.
func (c *Cached) Decrypt(ctx context.Context, blob []byte, encCtx map[string]string) (*DecryptResult, error) {
	if d, ok := c.decrypts.Get(blob, encCtx); ok {
		return &DecryptResult{KeyID: d.KeyID, KeyVersion: d.KeyVersion, Plaintext: d.Plaintext}, nil
	}
	res, err := c.Client.Decrypt(ctx, blob, encCtx)
	if err != nil {
		return nil, err
	}
	c.decrypts.Put(blob, encCtx, dkcache.Decrypted{KeyID: res.KeyID, KeyVersion: res.KeyVersion, Plaintext: res.Plaintext})
	return res, nil
}

// DecryptBatch serves what it can from the decrypt cache and sends the
// rest to kmsd in batches, caching the successful answers.
func (c *Cached) DecryptBatch(ctx context.Context, items []DecryptItem) ([]DecryptBatchResult, error) {
	results := make([]DecryptBatchResult, len(items))
	var missing []DecryptItem
	var missIdx []int
	for i, it := range items {
		if d, ok := c.decrypts.Get(it.CiphertextBlob, it.EncryptionContext); ok {
			results[i] = DecryptBatchResult{KeyID: d.KeyID, KeyVersion: d.KeyVersion, Plaintext: d.Plaintext}
			continue
		}
		missing = append(missing, it)
		missIdx = append(missIdx, i)
	}
	if len(missing) > 0 {
		got, err := c.Client.DecryptBatch(ctx, missing)
		if err != nil {
			for _, r := range results {
				clear(r.Plaintext)
			}
			return nil, err
		}
		for j, r := range got {
			results[missIdx[j]] = r
			if r.Err == nil {
				it := missing[j]
				c.decrypts.Put(it.CiphertextBlob, it.EncryptionContext, dkcache.Decrypted{KeyID: r.KeyID, KeyVersion: r.KeyVersion, Plaintext: r.Plaintext})
			}
		}
	}
	return results, nil
}

// ClearCaches evicts and zeroes every cached key and plaintext, e.g. after
// a key was disabled in an incident.
func (c *Cached) ClearCaches() {
	c.dataKeys.Clear()
	c.decrypts.Clear()
}
