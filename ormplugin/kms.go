package ormplugin

import (
	"context"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// The kmsclient result types, re-exported so that callers implementing KMS
// (for example a test double) need not import kmsclient.
type (
	DataKey         = kmsclient.DataKey
	DecryptResult   = kmsclient.DecryptResult
	ReEncryptResult = kmsclient.ReEncryptResult
)

// KMS is what the plugin needs from kmsd; *kmsclient.Client satisfies it.
// The plugin calls it once per data key (creation, and first use after a
// cache miss), never per row.
type KMS interface {
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error)
	Decrypt(ctx context.Context, blob []byte, encCtx map[string]string) (*DecryptResult, error)
}

// ReEncrypter is what RenewDataKeys needs: re-wrapping a data key under the
// newest master key version inside kmsd. *kmsclient.Client satisfies it.
type ReEncrypter interface {
	ReEncrypt(ctx context.Context, blob []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (*ReEncryptResult, error)
}

var (
	_ KMS         = (*kmsclient.Client)(nil)
	_ ReEncrypter = (*kmsclient.Client)(nil)
)
