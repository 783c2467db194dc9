package starter_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Importing starter must not link the server side (gin, PKCS#11) nor a
// config-center SDK or database driver the service did not import; each
// registering package links only its own.
func TestDependencies(t *testing.T) {
	tests := []struct {
		pkg       string
		forbidden []string
		required  []string
	}{
		{pkg: "github.com/kmsgo/kmsgo/starter",
			forbidden: []string{"github.com/gin-gonic/gin", "github.com/miekg/pkcs11", "github.com/kmsgo/kmsgo/server",
				"github.com/kmsgo/kmsgo/hsm", "github.com/nacos-group/nacos-sdk-go", "go.etcd.io/etcd",
				"github.com/mattn/go-sqlite3", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql"},
			required: []string{"github.com/kmsgo/kmsgo/configcenter", "github.com/kmsgo/kmsgo/ormplugin", "gorm.io/gorm"}},
		{pkg: "github.com/kmsgo/kmsgo/starter/etcd",
			forbidden: []string{"github.com/gin-gonic/gin", "github.com/miekg/pkcs11", "github.com/nacos-group/nacos-sdk-go", "github.com/mattn/go-sqlite3"},
			required:  []string{"go.etcd.io/etcd/client/v3"}},
		{pkg: "github.com/kmsgo/kmsgo/starter/nacos",
			forbidden: []string{"github.com/gin-gonic/gin", "github.com/miekg/pkcs11", "go.etcd.io/etcd", "github.com/mattn/go-sqlite3"},
			required:  []string{"github.com/nacos-group/nacos-sdk-go/v2"}},
		{pkg: "github.com/kmsgo/kmsgo/starter/postgres",
			forbidden: []string{"github.com/gin-gonic/gin", "github.com/miekg/pkcs11", "github.com/mattn/go-sqlite3", "github.com/nacos-group/nacos-sdk-go"},
			required:  []string{"github.com/jackc/pgx/v5"}},
		{pkg: "github.com/kmsgo/kmsgo/starter/mysql",
			forbidden: []string{"github.com/gin-gonic/gin", "github.com/miekg/pkcs11", "github.com/mattn/go-sqlite3", "github.com/jackc/pgx"},
			required:  []string{"github.com/go-sql-driver/mysql"}},
	}
	for _, tc := range tests {
		t.Run(tc.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", tc.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			deps := strings.Fields(string(out))
			has := func(prefix string) bool {
				for _, d := range deps {
					if d == prefix || strings.HasPrefix(d, prefix+"/") {
						return true
					}
				}
				return false
			}
			for _, f := range tc.forbidden {
				if has(f) {
					t.Errorf("%s links %s", tc.pkg, f)
				}
			}
			for _, r := range tc.required {
				if !has(r) {
					t.Errorf("%s does not link %s (test is not looking at the right thing)", tc.pkg, r)
				}
			}
		})
	}
}
