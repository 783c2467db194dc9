package kmsclient

import (
	"context"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"net/http"
	"net/url"
	"strings"
)

// AliasPrefix starts every alias name.
const AliasPrefix = kmsapi.AliasPrefix

// Alias maps an alias name ("alias/orders") to a key id.
type Alias = kmsapi.Alias

// aliasPath is the route for name, given with or without "alias/".
func aliasPath(name string) string {
	return "/v1/aliases/" + url.PathEscape(strings.TrimPrefix(name, AliasPrefix))
}

// fullAlias adds the "alias/" prefix when missing.
func fullAlias(name string) string {
	if strings.HasPrefix(name, AliasPrefix) {
		return name
	}
	return AliasPrefix + name
}

// ListAliases returns all aliases, or those of keyID when it is not empty.
func (c *Client) ListAliases(ctx context.Context, keyID string) ([]Alias, error) {
	q := url.Values{}
	setIf(q, "key_id", keyID)
	var out kmsapi.AliasesResponse
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/aliases", query: q, out: &out}); err != nil {
		return nil, err
	}
	return out.Aliases, nil
}

func (c *Client) aliasCall(ctx context.Context, method, path string, in any) (*Alias, error) {
	var out Alias
	if err := c.do(ctx, call{method: method, path: path, in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetAlias resolves an alias (name with or without "alias/") to its key id.
func (c *Client) GetAlias(ctx context.Context, name string) (*Alias, error) {
	return c.aliasCall(ctx, http.MethodGet, aliasPath(name), nil)
}

// CreateAlias points a new alias at keyID. The "alias/" prefix is added to
// name when missing.
func (c *Client) CreateAlias(ctx context.Context, name, keyID string) (*Alias, error) {
	return c.aliasCall(ctx, http.MethodPost, "/v1/aliases", Alias{AliasName: fullAlias(name), KeyID: keyID})
}

// UpdateAlias points an existing alias at another key.
func (c *Client) UpdateAlias(ctx context.Context, name, keyID string) (*Alias, error) {
	return c.aliasCall(ctx, http.MethodPut, aliasPath(name), struct {
		KeyID string `json:"key_id"`
	}{keyID})
}

// DeleteAlias removes an alias; the key is not affected.
func (c *Client) DeleteAlias(ctx context.Context, name string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: aliasPath(name)})
}
