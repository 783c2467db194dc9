package kmsclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Key states, protection levels and origins (see KeyMetadata).
const (
	KeyStateEnabled         = "Enabled"
	KeyStateDisabled        = "Disabled"
	KeyStatePendingDeletion = "PendingDeletion"
	KeyStatePendingImport   = "PendingImport"
	KeyStateDestroyed       = "Destroyed"

	ProtectionHSM      = "HSM"
	ProtectionSoftware = "SOFTWARE"

	OriginKMS      = "KMS"
	OriginExternal = "EXTERNAL"

	// WrappingRSAOAEPSHA256 is the import wrapping algorithm.
	WrappingRSAOAEPSHA256 = "RSAES_OAEP_SHA_256"
)

// KeyMetadata describes a master key.
type KeyMetadata struct {
	KeyID           string            `json:"key_id"`
	Description     string            `json:"description"`
	KeySpec         string            `json:"key_spec"`
	ProtectionLevel string            `json:"protection_level"`
	Origin          string            `json:"origin"`
	KeyState        string            `json:"key_state"`
	CreationDate    time.Time         `json:"creation_date"`
	DeletionDate    *time.Time        `json:"deletion_date"`
	PrimaryVersion  int               `json:"primary_version"`
	Aliases         []string          `json:"aliases"`
	Tags            map[string]string `json:"tags"`
	Rotation        RotationPolicy    `json:"rotation"`
}

// RotationPolicy is a key's automatic rotation setting.
type RotationPolicy struct {
	Enabled        bool       `json:"enabled"`
	PeriodDays     int        `json:"period_days"`
	NextRotationAt *time.Time `json:"next_rotation_at"`
}

// CreateKeyInput is the body of CreateKey. Every field is optional; the
// server defaults are AES_256, SOFTWARE, KMS.
type CreateKeyInput struct {
	Description     string            `json:"description,omitempty"`
	KeySpec         string            `json:"key_spec,omitempty"`
	ProtectionLevel string            `json:"protection_level,omitempty"`
	Origin          string            `json:"origin,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	Alias           string            `json:"alias,omitempty"`
}

// ListKeysInput filters and pages ListKeys. Zero fields are not sent.
type ListKeysInput struct {
	Limit  int
	Marker string // NextMarker of the previous page
	State  string
	Alias  string
	Tag    string // "key:value"
}

// ListKeysOutput is one page of keys. NextMarker is empty on the last page.
type ListKeysOutput struct {
	Keys       []KeyMetadata `json:"keys"`
	NextMarker string        `json:"next_marker"`
}

// KeyVersion is one version of a master key.
type KeyVersion struct {
	Version      int       `json:"version"`
	State        string    `json:"state"`
	Primary      bool      `json:"primary"`
	CreationDate time.Time `json:"creation_date"`
}

// ImportParameters is the answer of GetParametersForImport.
type ImportParameters struct {
	ImportToken string    `json:"import_token"`
	PublicKey   []byte    `json:"public_key"` // DER SubjectPublicKeyInfo (RSA)
	ValidTo     time.Time `json:"valid_to"`
}

func keyPath(id string, rest string) string {
	return "/v1/keys/" + url.PathEscape(id) + rest
}

// keyRef turns a key reference into the key id the /v1/keys/:id routes take:
// an empty reference is ErrInvalidArgument and an alias ("alias/orders") is
// resolved with GetAlias (which needs kms:ListAliases).
func (c *Client) keyRef(ctx context.Context, ref string) (string, error) {
	switch {
	case ref == "" || ref == AliasPrefix:
		return "", fmt.Errorf("%w: empty key id", ErrInvalidArgument)
	case strings.HasPrefix(ref, AliasPrefix):
		a, err := c.GetAlias(ctx, ref)
		if err != nil {
			return "", err
		}
		return a.KeyID, nil
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

// CreateKey creates a master key.
func (c *Client) CreateKey(ctx context.Context, in CreateKeyInput) (*KeyMetadata, error) {
	return c.keyCall(ctx, http.MethodPost, "/v1/keys", in)
}

// ListKeys returns one page of keys.
func (c *Client) ListKeys(ctx context.Context, in ListKeysInput) (*ListKeysOutput, error) {
	q := url.Values{}
	if in.Limit > 0 {
		q.Set("limit", strconv.Itoa(in.Limit))
	}
	setIf(q, "marker", in.Marker)
	setIf(q, "state", in.State)
	setIf(q, "alias", in.Alias)
	setIf(q, "tag", in.Tag)
	var out ListKeysOutput
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys", query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DescribeKey returns a key's metadata. id is a key id, not an alias.
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
	return c.keyCall(ctx, http.MethodPatch, keyPath(id, ""), struct {
		Description string `json:"description"`
	}{description})
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
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/schedule-deletion"), struct {
		PendingWindowDays int `json:"pending_window_days,omitempty"`
	}{pendingWindowDays})
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
	in := struct {
		Enabled    bool `json:"enabled"`
		PeriodDays int  `json:"period_days,omitempty"`
	}{enabled, periodDays}
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
	var out struct {
		Versions []KeyVersion `json:"versions"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: keyPath(id, "/versions"), out: &out}); err != nil {
		return nil, err
	}
	return out.Versions, nil
}

type tagsBody struct {
	Tags map[string]string `json:"tags"`
}

func (c *Client) tagsCall(ctx context.Context, method, path string, in any) (map[string]string, error) {
	var out tagsBody
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
	return c.tagsCall(ctx, http.MethodPost, keyPath(id, "/tags"), tagsBody{Tags: tags})
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
	return c.tagsCall(ctx, http.MethodPost, keyPath(id, "/untag"), struct {
		TagKeys []string `json:"tag_keys"`
	}{tagKeys})
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
	in := struct {
		WrappingAlgorithm string `json:"wrapping_algorithm"`
	}{wrappingAlgorithm}
	if err := c.do(ctx, call{method: http.MethodPost, path: keyPath(id, "/import-parameters"), in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportKeyMaterial imports key material wrapped with the public key from
// GetParametersForImport.
func (c *Client) ImportKeyMaterial(ctx context.Context, id, importToken string, encryptedKeyMaterial []byte) (*KeyMetadata, error) {
	id, err := c.keyRef(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.keyCall(ctx, http.MethodPost, keyPath(id, "/import"), struct {
		ImportToken          string `json:"import_token"`
		EncryptedKeyMaterial []byte `json:"encrypted_key_material"`
	}{importToken, nonNil(encryptedKeyMaterial)})
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
