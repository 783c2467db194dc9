package starter_test

import (
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/starter"
)

// FuzzLoadSettings: any YAML document and variable never panics, and an
// error never quotes the KMS secret.
func FuzzLoadSettings(f *testing.F) {
	f.Add([]byte("kms: {endpoint: http://a:1}\n"), "KMSGO_KMS_TIMEOUT=5s")
	f.Add([]byte("kms:\n  endpoint: [1, 2]\n"), "KMSGO_CONFIG_SOURCES=file,etcd")
	f.Add([]byte("config: {sources: [etcd], etcd: {endpoints: [x], prefix: /a/}}\n"), "KMSGO_CONFIG_ENCRYPTION_CONTEXT=a=b,c")
	f.Add([]byte("database: {driver: mysql, dsn: 'u:p@tcp(h)/d', max_open_conns: x}\n"), "KMSGO_DATABASE_MAX_OPEN_CONNS=-1")
	f.Add([]byte("kms: {secret_access_key: zzz}\n"), "KMSGO_NOPE=1")
	f.Fuzz(func(t *testing.T, doc []byte, variable string) {
		const secret = "FUZZ-SECRET-VALUE-0123456789"
		environ := []string{"KMSGO_KMS_ACCESS_KEY_ID=AK", "KMSGO_KMS_SECRET_ACCESS_KEY=" + secret, variable}
		_, err := starter.LoadSettings("fuzz.yaml", doc, environ)
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("error quotes the secret: %v", err)
		}
	})
}
