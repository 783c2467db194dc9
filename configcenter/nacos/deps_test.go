package nacos_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A service that reads config from Nacos must not link the etcd client, the
// HTTP server framework or the PKCS#11 bindings.
func TestDoesNotLinkEtcdGinOrPKCS11(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kmsgo/kmsgo/configcenter/nacos").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !contains(deps, "github.com/nacos-group/nacos-sdk-go/v2/clients") {
		t.Fatalf("implausible dependency list (%d entries)", len(deps))
	}
	for _, d := range deps {
		for _, banned := range []string{"go.etcd.io/etcd", "github.com/gin-gonic/gin", "github.com/miekg/pkcs11"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("configcenter/nacos links %s", d)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
