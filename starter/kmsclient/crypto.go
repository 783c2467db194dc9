package kmsclient

import (
	"context"
	"fmt"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"net/http"
)

// Data key specs and batch limits.
const (
	KeySpecAES256 = kmsapi.KeySpecAES256
	KeySpecAES128 = kmsapi.KeySpecAES128

	// MaxBatchItems is the per-request item limit of /v1/decrypt/batch.
	// DecryptBatch splits larger inputs into several requests.
	MaxBatchItems = 100
	// maxBatchBody keeps each batch request under the server's 1 MiB limit.
	maxBatchBody = 900 << 10
)

// The wire types of the crypto operations (starter/kmsapi).
type (
	// DataKey is a data key from GenerateDataKey. Plaintext is secret: use
	// it for local encryption, then clear it; store only CiphertextBlob.
	// GenerateDataKeyWithoutPlaintext leaves Plaintext nil.
	DataKey = kmsapi.GenerateDataKeyResponse
	// EncryptResult is the answer of Encrypt.
	EncryptResult = kmsapi.EncryptResponse
	// DecryptResult is the answer of Decrypt. Plaintext is secret.
	DecryptResult = kmsapi.DecryptResponse
	// DecryptItem is one input of DecryptBatch (KeyID optional).
	DecryptItem = kmsapi.DecryptRequest
	// ReEncryptResult is the answer of ReEncrypt.
	ReEncryptResult = kmsapi.ReEncryptResponse
)

// DecryptBatchResult is one output of DecryptBatch, in input order: either
// the decrypted fields or Err (an *APIError whose StatusCode is derived
// from its code).
type DecryptBatchResult struct {
	KeyID      string
	KeyVersion int
	Plaintext  []byte
	Err        error
}

// Encrypt encrypts a small plaintext (at most 4096 bytes, as AWS KMS) under the primary version of keyID (an id or "alias/name").
// For bulk data use GenerateDataKey and encrypt locally.
func (c *Client) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (*EncryptResult, error) {
	var out EncryptResult
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/encrypt", secretBody: true,
		in:  kmsapi.EncryptRequest{KeyID: keyID, Plaintext: nonNil(plaintext), EncryptionContext: encCtx},
		out: &out})
	if err != nil {
		return nil, err
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("%w: encrypt: empty ciphertext_blob", ErrMalformedResponse)
	}
	return &out, nil
}

// Decrypt decrypts a blob from Encrypt (or a data key's CiphertextBlob)
// with the exact encryption context it was made with. Any failure to
// decrypt is one error matching ErrInvalidCiphertext; it is never retried.
func (c *Client) Decrypt(ctx context.Context, blob []byte, encCtx map[string]string) (*DecryptResult, error) {
	return c.DecryptWithKeyID(ctx, "", blob, encCtx)
}

// DecryptWithKeyID is Decrypt that also asks the server to refuse the blob
// unless it was made under keyID (an id or alias). An empty keyID is Decrypt.
func (c *Client) DecryptWithKeyID(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) (*DecryptResult, error) {
	var out DecryptResult
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/decrypt",
		in:  kmsapi.DecryptRequest{CiphertextBlob: nonNil(blob), EncryptionContext: encCtx, KeyID: keyID},
		out: &out})
	if err != nil {
		return nil, err
	}
	if out.Plaintext == nil {
		out.Plaintext = []byte{}
	}
	return &out, nil
}

// DecryptBatch decrypts many blobs, MaxBatchItems (and under 1 MiB) per
// request. The results are in input order; a per-item failure is in that
// result's Err and does not fail the others. The returned error is for a
// whole request failing (then no results are returned).
func (c *Client) DecryptBatch(ctx context.Context, items []DecryptItem) ([]DecryptBatchResult, error) {
	results := make([]DecryptBatchResult, 0, len(items))
	for start := 0; start < len(items); {
		end, size := start, 0
		for end < len(items) && end-start < MaxBatchItems {
			n := itemSize(items[end])
			if end > start && size+n > maxBatchBody {
				break
			}
			size += n
			end++
		}
		chunk := make([]DecryptItem, end-start)
		for i, it := range items[start:end] {
			chunk[i] = DecryptItem{CiphertextBlob: nonNil(it.CiphertextBlob), EncryptionContext: it.EncryptionContext, KeyID: it.KeyID}
		}
		var out kmsapi.DecryptBatchResponse
		if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/decrypt/batch", in: kmsapi.DecryptBatchRequest{Items: chunk}, out: &out}); err != nil {
			for _, r := range results {
				clear(r.Plaintext)
			}
			return nil, err
		}
		if len(out.Results) != len(chunk) {
			for _, r := range out.Results {
				clear(r.Plaintext)
			}
			for _, r := range results {
				clear(r.Plaintext)
			}
			return nil, fmt.Errorf("%w: decrypt batch: %d results for %d items", ErrMalformedResponse, len(out.Results), len(chunk))
		}
		for _, r := range out.Results {
			if r.Error != nil {
				clear(r.Plaintext)
				code := truncate(r.Error.Code, 64)
				results = append(results, DecryptBatchResult{Err: &APIError{
					StatusCode: codeStatus(code), Code: code, Message: truncate(r.Error.Message, maxMessageLen),
				}})
				continue
			}
			pt := r.Plaintext
			if pt == nil {
				pt = []byte{}
			}
			results = append(results, DecryptBatchResult{KeyID: r.KeyID, KeyVersion: r.KeyVersion, Plaintext: pt})
		}
		start = end
	}
	return results, nil
}

// itemSize estimates the JSON size of one batch item.
func itemSize(it DecryptItem) int {
	n := 64 + (len(it.CiphertextBlob)+2)/3*4
	for k, v := range it.EncryptionContext {
		n += 8 + 2*(len(k)+len(v)) // worst-case escaping is larger; this is a soft bound
	}
	return n
}

// GenerateDataKey returns a new AES-256 data key in plaintext and encrypted
// under keyID (an id or alias) with encCtx.
func (c *Client) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	var out DataKey
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/generate-data-key",
		in:  kmsapi.GenerateDataKeyRequest{KeyID: keyID, KeySpec: KeySpecAES256, EncryptionContext: encCtx},
		out: &out})
	if err != nil {
		return nil, err
	}
	if len(out.Plaintext) != 32 || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, fmt.Errorf("%w: generate-data-key: want a 32-byte key and a blob", ErrMalformedResponse)
	}
	return &out, nil
}

// GenerateDataKeyWithoutPlaintext is GenerateDataKey that returns only the
// encrypted data key (Plaintext is nil), for a component that stores keys
// for others to decrypt later.
func (c *Client) GenerateDataKeyWithoutPlaintext(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	var out DataKey
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/generate-data-key-without-plaintext",
		in:  kmsapi.GenerateDataKeyRequest{KeyID: keyID, KeySpec: KeySpecAES256, EncryptionContext: encCtx},
		out: &out})
	if err != nil {
		return nil, err
	}
	clear(out.Plaintext)
	out.Plaintext = nil
	if len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("%w: generate-data-key-without-plaintext: empty ciphertext_blob", ErrMalformedResponse)
	}
	return &out, nil
}

// ReEncrypt decrypts blob (made with srcCtx) and encrypts the result under
// dstKeyID with dstCtx, inside kmsd: the plaintext never reaches the client.
// Used to move data to a new key or to the newest key version.
func (c *Client) ReEncrypt(ctx context.Context, blob []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (*ReEncryptResult, error) {
	var out ReEncryptResult
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/re-encrypt",
		in: kmsapi.ReEncryptRequest{CiphertextBlob: nonNil(blob), SourceEncryptionContext: srcCtx,
			DestinationKeyID: dstKeyID, DestinationEncryptionContext: dstCtx},
		out: &out})
	if err != nil {
		return nil, err
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("%w: re-encrypt: empty ciphertext_blob", ErrMalformedResponse)
	}
	return &out, nil
}

// GenerateRandom returns n (1–1024) random bytes from the HSM.
func (c *Client) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	if n < 1 || n > 1024 {
		return nil, fmt.Errorf("%w: GenerateRandom: n must be 1..1024, got %d", ErrInvalidArgument, n)
	}
	var out kmsapi.RandomResponse
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/random",
		in: kmsapi.RandomRequest{NumberOfBytes: n}, out: &out})
	if err != nil {
		return nil, err
	}
	if len(out.Plaintext) != n {
		clear(out.Plaintext)
		return nil, fmt.Errorf("%w: random: got %d bytes, want %d", ErrMalformedResponse, len(out.Plaintext), n)
	}
	return out.Plaintext, nil
}

// nonNil makes a nil slice encode as "" rather than null.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
