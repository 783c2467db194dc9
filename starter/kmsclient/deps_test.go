package kmsclient_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLinksNoServerCode: a Go service that imports only the client
// and the GORM plugin must not link the server's web framework, PKCS#11,
// cron, Prometheus or any server/ or hsm/ package.
func TestClientLinksNoServerCode(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps",
		"github.com/kmsgo/kmsgo/starter/kmsclient", "github.com/kmsgo/kmsgo/ormplugin").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/gin-gonic/",
		"github.com/miekg/pkcs11",
		"github.com/robfig/cron",
		"github.com/prometheus/",
		"github.com/kmsgo/kmsgo/server/",
		"github.com/kmsgo/kmsgo/hsm",
		"github.com/kmsgo/kmsgo/jobs",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned too little to be a dependency list: %q", out)
	}
	seen := false
	for _, d := range deps {
		if d == "github.com/kmsgo/kmsgo/starter/kmsapi" {
			seen = true
		}
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("the client side links %s", d)
			}
		}
	}
	if !seen {
		t.Error("the client does not use the shared wire package starter/kmsapi")
	}
}
