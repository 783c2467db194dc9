package configcenter_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Each source lives in its own package so that a service links only the
// SDK it uses; the core links no source SDK, no server-side code and no
// HSM library.
func TestDependencies(t *testing.T) {
	const mod = "github.com/kmsgo/kmsgo/"
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{"configcenter", []string{"go.etcd.io/", "github.com/nacos-group/", "github.com/gin-gonic/", "github.com/miekg/pkcs11", mod + "server", mod + "hsm"}},
		{"configcenter/etcd", []string{"github.com/nacos-group/", "github.com/gin-gonic/", "github.com/miekg/pkcs11", mod + "server", mod + "hsm"}},
		{"configcenter/file", []string{"go.etcd.io/", "github.com/nacos-group/", "github.com/gin-gonic/", "github.com/miekg/pkcs11", mod + "server"}},
	}
	for _, tc := range tests {
		t.Run(tc.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", mod+tc.pkg).Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 10 || !strings.Contains(string(out), "github.com/knadh/koanf/v2") {
				t.Fatalf("implausible dependency list (%d packages)", len(deps))
			}
			for _, d := range deps {
				for _, f := range tc.forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("%s links %s", tc.pkg, d)
					}
				}
			}
		})
	}
}
