package kmsclient

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Policy is an access key's policy document: deny by default, an explicit
// Deny wins over any Allow.
type Policy struct {
	Statements []Statement `json:"statements"`
}

// Statement allows or denies actions ("kms:Decrypt", "kms:*") on resources
// ("key/<id>", "alias/<name>", "*"); both take * wildcards.
type Statement struct {
	Effect    string   `json:"effect"` // "Allow" or "Deny"
	Actions   []string `json:"actions"`
	Resources []string `json:"resources"`
}

// AdminPolicy allows everything.
func AdminPolicy() Policy {
	return Policy{Statements: []Statement{{Effect: "Allow", Actions: []string{"*"}, Resources: []string{"*"}}}}
}

// AccessKey is an API credential. SecretAccessKey is set only by
// CreateAccessKey and RotateAccessKeySecret, once: store it then.
type AccessKey struct {
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key,omitempty"`
	Description     string    `json:"description"`
	Status          string    `json:"status"`
	Policy          Policy    `json:"policy"`
	CreationDate    time.Time `json:"creation_date"`
	// IdempotentReplay is true when a CreateAccessKey retry answered the
	// key an earlier attempt with the same idempotency token created; the
	// secret is then empty (it is shown once: use RotateAccessKeySecret).
	IdempotentReplay bool `json:"idempotent_replay,omitempty"`
}

// CreateAccessKeyInput is the input of CreateAccessKeyWith.
type CreateAccessKeyInput struct {
	Description string
	Policy      Policy
	// IdempotencyToken makes retries safe (see CreateKey); empty: the
	// client generates one for the call.
	IdempotencyToken string
}

func accessKeyPath(id, rest string) string {
	return "/v1/access-keys/" + url.PathEscape(id) + rest
}

func (c *Client) accessKeyCall(ctx context.Context, method, path string, in any) (*AccessKey, error) {
	var out AccessKey
	if err := c.do(ctx, call{method: method, path: path, in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateAccessKey issues a new access key with policy. The answer carries
// the secret, shown once.
func (c *Client) CreateAccessKey(ctx context.Context, description string, policy Policy) (*AccessKey, error) {
	return c.CreateAccessKeyWith(ctx, CreateAccessKeyInput{Description: description, Policy: policy})
}

// CreateAccessKeyWith is CreateAccessKey with an idempotency token. If the
// first attempt created the key but its answer was lost, the retry answers
// the same access key with IdempotentReplay set and no secret.
func (c *Client) CreateAccessKeyWith(ctx context.Context, in CreateAccessKeyInput) (*AccessKey, error) {
	var err error
	if in.IdempotencyToken, err = idempotencyToken(in.IdempotencyToken); err != nil {
		return nil, err
	}
	return c.accessKeyCall(ctx, http.MethodPost, "/v1/access-keys", struct {
		Description      string `json:"description"`
		Policy           Policy `json:"policy"`
		IdempotencyToken string `json:"idempotency_token"`
	}{in.Description, in.Policy, in.IdempotencyToken})
}

// ListAccessKeys returns all access keys, without secrets.
func (c *Client) ListAccessKeys(ctx context.Context) ([]AccessKey, error) {
	var out struct {
		AccessKeys []AccessKey `json:"access_keys"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/access-keys", out: &out}); err != nil {
		return nil, err
	}
	return out.AccessKeys, nil
}

// DescribeAccessKey returns one access key, without its secret.
func (c *Client) DescribeAccessKey(ctx context.Context, id string) (*AccessKey, error) {
	return c.accessKeyCall(ctx, http.MethodGet, accessKeyPath(id, ""), nil)
}

// UpdateAccessKeyPolicy replaces an access key's policy.
func (c *Client) UpdateAccessKeyPolicy(ctx context.Context, id string, policy Policy) (*AccessKey, error) {
	return c.accessKeyCall(ctx, http.MethodPut, accessKeyPath(id, "/policy"), struct {
		Policy Policy `json:"policy"`
	}{policy})
}

// DisableAccessKey makes an access key fail authentication until enabled.
func (c *Client) DisableAccessKey(ctx context.Context, id string) (*AccessKey, error) {
	return c.accessKeyCall(ctx, http.MethodPost, accessKeyPath(id, "/disable"), nil)
}

// EnableAccessKey re-enables a disabled access key.
func (c *Client) EnableAccessKey(ctx context.Context, id string) (*AccessKey, error) {
	return c.accessKeyCall(ctx, http.MethodPost, accessKeyPath(id, "/enable"), nil)
}

// RotateAccessKeySecret issues a new secret for id; the answer carries it.
func (c *Client) RotateAccessKeySecret(ctx context.Context, id string) (*AccessKey, error) {
	return c.accessKeyCall(ctx, http.MethodPost, accessKeyPath(id, "/rotate-secret"), nil)
}

// DeleteAccessKey deletes an access key.
func (c *Client) DeleteAccessKey(ctx context.Context, id string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: accessKeyPath(id, "")})
}
