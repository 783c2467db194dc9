package kmsclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"net/http"
	"net/url"
	"strconv"
)

// Key states, protection levels and origins (see KeyMetadata).
const (
	KeyStateEnabled         = kmsapi.KeyStateEnabled
	KeyStateDisabled        = kmsapi.KeyStateDisabled
	KeyStatePendingDeletion = kmsapi.KeyStatePendingDeletion
	KeyStatePendingImport   = kmsapi.KeyStatePendingImport
	KeyStateDestroyed       = kmsapi.KeyStateDestroyed

	ProtectionHSM      = kmsapi.ProtectionHSM
	ProtectionSoftware = kmsapi.ProtectionSoftware

	OriginKMS      = kmsapi.OriginKMS
	OriginExternal = kmsapi.OriginExternal

	// Key version states (see KeyVersion).
	VersionEnabled   = kmsapi.VersionEnabled
	VersionDisabled  = kmsapi.VersionDisabled
	VersionDestroyed = kmsapi.VersionDestroyed

	// WrappingRSAOAEPSHA256 is the import wrapping algorithm.
	WrappingRSAOAEPSHA256 = kmsapi.WrappingRSAOAEPSHA256
)

// The wire types of the API, shared with the server (starter/kmsapi).
type (
	// KeyMetadata describes a master key.
	KeyMetadata = kmsapi.KeyMetadata
	// RotationPolicy is a key's automatic rotation setting.
	RotationPolicy = kmsapi.RotationPolicy
	// CreateKeyInput is the body of CreateKey. Every field is optional; the
	// server defaults are AES_256, SOFTWARE, KMS.
	CreateKeyInput = kmsapi.CreateKeyRequest
	// ListKeysOutput is one page of keys. NextMarker is empty on the last page.
	ListKeysOutput = kmsapi.ListKeysResponse
	// KeyVersion is one version of a master key, with its decryption usage
	// (DecryptCount, LastUsedAt) and state (Disabled: retired).
	KeyVersion = kmsapi.KeyVersion
	// ImportParameters is the answer of GetParametersForImport.
	ImportParameters = kmsapi.ImportParameters
)

// ListKeysInput filters and pages ListKeys. Zero fields are not sent.
type ListKeysInput struct {
	Limit  int
	Marker string // NextMarker of the previous page
	State  kmsapi.KeyState
	Alias  string
	Tag    string // "key:value"
}

func keyPath(id string, rest string) string {
	return "/v1/keys/" + url.PathEscape(id) + rest
}

// keyRef checks a key reference for the /v1/keys/:id routes, which take a
// key id or an alias name ("alias/orders") alike: the server resolves it
// in the same request. An empty reference is ErrInvalidArgument.
func (c *Client) keyRef(_ context.Context, ref string) (string, error) {
	if ref == "" || ref == AliasPrefix {
		return "", fmt.Errorf("%w: empty key id", ErrInvalidArgument)
	}
	return ref, nil
}

func (c *Client) keyCall(ctx context.Context, method, path string, in any) (*KeyMetadata, error) {
	var out KeyMetadata
	if err := c.do(ctx, call{method: method, path: path, in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateKey creates a master key. Retries are safe: without
// in.IdempotencyToken the client generates one (crypto/rand) for this call
// and sends it on every retry, so a retried request whose first attempt
// created the key answers that key instead of creating another. Set the
// token yourself to make your own retries (across processes) safe too; the
// same token with other parameters fails with CodeIdempotencyMismatch.
func (c *Client) CreateKey(ctx context.Context, in CreateKeyInput) (*KeyMetadata, error) {
	var err error
	if in.IdempotencyToken, err = idempotencyToken(in.IdempotencyToken); err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPost, "/v1/keys", in)
}

// NewIdempotencyToken returns a fresh random idempotency token (32 hex
// characters from crypto/rand).
func NewIdempotencyToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("kmsclient: random: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// idempotencyToken returns t if it is a valid token, or a fresh one if t is
// empty: the one token a create call sends on every retry.
func idempotencyToken(t string) (string, error) {
	if t == "" {
		return NewIdempotencyToken()
	}
	if !kmsapi.ValidIdempotencyToken(t) {
		return "", fmt.Errorf("%w: idempotency token must be 1-%d characters of A-Z a-z 0-9 - _ . :", ErrInvalidArgument, kmsapi.MaxIdempotencyToken)
	}
	return t, nil
}

// ListKeys returns one page of keys.
func (c *Client) ListKeys(ctx context.Context, in ListKeysInput) (*ListKeysOutput, error) {
	q := url.Values{}
	if in.Limit > 0 {
		q.Set("limit", strconv.Itoa(in.Limit))
	}
	setIf(q, "marker", in.Marker)
	setIf(q, "state", string(in.State))
	setIf(q, "alias", in.Alias)
	setIf(q, "tag", in.Tag)
	var out ListKeysOutput
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DescribeKey returns a key's metadata. id is a key id or an alias name.
func (c *Client) DescribeKey(ctx context.Context, id string) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodGet, keyPath(id, ""), nil)
}

// UpdateKeyDescription sets a key's description.
func (c *Client) UpdateKeyDescription(ctx context.Context, id, description string) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPatch, keyPath(id, ""), kmsapi.DescriptionRequest{Description: &description})
}

// EnableKey enables a disabled key.
func (c *Client) EnableKey(ctx context.Context, id string) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/enable"), nil)
}

// DisableKey disables a key: it can no longer encrypt or decrypt.
func (c *Client) DisableKey(ctx context.Context, id string) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/disable"), nil)
}

// RotateKey adds a new primary version now.
func (c *Client) RotateKey(ctx context.Context, id string) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/rotate"), nil)
}

// ScheduleKeyDeletion schedules destruction after pendingWindowDays (7–30;
// 0 means the server default, 30).
func (c *Client) ScheduleKeyDeletion(ctx context.Context, id string, pendingWindowDays int) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	var in kmsapi.ScheduleDeletionRequest
	if pendingWindowDays != 0 {
		in.PendingWindowDays = &pendingWindowDays
	}
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/schedule-deletion"), in)
}

// CancelKeyDeletion cancels a scheduled deletion; the key becomes Disabled.
func (c *Client) CancelKeyDeletion(ctx context.Context, id string) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/cancel-deletion"), nil)
}

// GetRotationPolicy returns a key's rotation policy.
func (c *Client) GetRotationPolicy(ctx context.Context, id string) (*RotationPolicy, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	var out RotationPolicy
	if err := c.do(ctx, call{method: http.MethodGet, path: keyPath(id, "/rotation-policy"), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetRotationPolicy turns automatic rotation on or off; periodDays 0 means
// the server default.
func (c *Client) SetRotationPolicy(ctx context.Context, id string, enabled bool, periodDays int) (*RotationPolicy, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	var out RotationPolicy
	in := kmsapi.RotationPolicyRequest{Enabled: &enabled}
	if periodDays != 0 {
		in.PeriodDays = &periodDays
	}
	if err := c.do(ctx, call{method: http.MethodPut, path: keyPath(id, "/rotation-policy"), in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeyVersions returns all versions of a key.
func (c *Client) ListKeyVersions(ctx context.Context, id string) ([]KeyVersion, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	var out kmsapi.VersionsResponse
	if err := c.do(ctx, call{method: http.MethodGet, path: keyPath(id, "/versions"), out: &out}); err != nil {
		return nil, err
	}
	return out.Versions, nil
}

// DisableKeyVersion retires a version of a key for decryption: data still
// encrypted under it then fails to decrypt with ErrKeyVersionDisabled
// until EnableKeyVersion. The version's material is kept; it is destroyed
// only with the key. The server refuses the primary version (rotate first,
// ErrInvalidKeyState) and, unless force, a version used for decryption
// within its retirement quiet period (ErrVersionInUse, whose message says
// when it was last used). Renew the data under the new primary version
// first (ReEncrypt, ormplugin renewal, kmsctl config renew).
func (c *Client) DisableKeyVersion(ctx context.Context, id string, version int, force bool) (*KeyVersion, error) {
	return c.versionCall(ctx, id, version, "/disable", kmsapi.DisableKeyVersionRequest{Force: force})
}

// EnableKeyVersion undoes DisableKeyVersion: the version decrypts again.
func (c *Client) EnableKeyVersion(ctx context.Context, id string, version int) (*KeyVersion, error) {
	return c.versionCall(ctx, id, version, "/enable", nil)
}

func (c *Client) versionCall(ctx context.Context, id string, version int, action string, in any) (*KeyVersion, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	if version < 1 {
		return nil, fmt.Errorf("%w: key version must be a positive integer", ErrInvalidArgument)
	}
	var out KeyVersion
	if err := c.do(ctx, call{method: http.MethodPost, path: keyPath(id, "/versions/"+strconv.Itoa(version)+action), in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) tagsCall(ctx context.Context, method, path string, in any) (map[string]string, error) {
	var out kmsapi.Tags
	if err := c.do(ctx, call{method: method, path: path, in: in, out: &out}); err != nil {
		return nil, err
	}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	return out.Tags, nil
}

// ListTags returns a key's tags.
func (c *Client) ListTags(ctx context.Context, id string) (map[string]string, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.tagsCall(ctx, http.MethodGet, keyPath(id, "/tags"), nil)
}

// TagKey adds or overwrites tags and returns all tags of the key.
func (c *Client) TagKey(ctx context.Context, id string, tags map[string]string) (map[string]string, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.tagsCall(ctx, http.MethodPost, keyPath(id, "/tags"), kmsapi.Tags{Tags: tags})
}

// UntagKey removes the tags named by tagKeys and returns the remaining tags.
func (c *Client) UntagKey(ctx context.Context, id string, tagKeys []string) (map[string]string, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	if tagKeys == nil {
		tagKeys = []string{}
	}
	return c.tagsCall(ctx, http.MethodPost, keyPath(id, "/untag"), kmsapi.UntagRequest{TagKeys: tagKeys})
}

// GetParametersForImport returns the RSA public key and token for wrapping
// key material to import into an EXTERNAL-origin key. wrappingAlgorithm ""
// means WrappingRSAOAEPSHA256.
func (c *Client) GetParametersForImport(ctx context.Context, id, wrappingAlgorithm string) (*ImportParameters, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	if wrappingAlgorithm == "" {
		wrappingAlgorithm = WrappingRSAOAEPSHA256
	}
	var out ImportParameters
	in := kmsapi.ImportParametersRequest{WrappingAlgorithm: wrappingAlgorithm}
	if err := c.do(ctx, call{method: http.MethodPost, path: keyPath(id, "/import-parameters"), in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportKeyMaterial imports key material wrapped with the public key from
// GetParametersForImport.
func (c *Client) ImportKeyMaterial(ctx context.Context, id string, importToken, encryptedKeyMaterial []byte) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/import"), kmsapi.ImportRequest{ImportToken: nonNil(importToken), EncryptedKeyMaterial: nonNil(encryptedKeyMaterial)})
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
