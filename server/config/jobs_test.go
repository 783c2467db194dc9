package config_test

import (
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/config"
)

// TestExampleYAMLDocumentsJobDefaults: the jobs section of
// cmd/kmsd/kmsd.example.yaml shows the defaults.
func TestExampleYAMLDocumentsJobDefaults(t *testing.T) {
	c, err := config.Load("../../cmd/kmsd/kmsd.example.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Jobs != config.Defaults().Jobs {
		t.Fatalf("example jobs section %+v, defaults %+v", c.Jobs, config.Defaults().Jobs)
	}
}

func TestAuditSpoolSetting(t *testing.T) {
	for _, tc := range []struct {
		spool, dialect string
		want           bool
	}{
		{"", "sqlite", true}, {"auto", "sqlite", true}, {"auto", "mysql", false}, {"", "postgres", false},
		{"on", "postgres", true}, {"off", "sqlite", false},
	} {
		c := config.Defaults()
		c.Audit.Spool = tc.spool
		if got := c.AuditSpoolEnabled(tc.dialect); got != tc.want {
			t.Errorf("spool %q on %s: %v, want %v", tc.spool, tc.dialect, got, tc.want)
		}
	}
	c := config.Defaults()
	c.Audit.Spool = "sometimes"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "audit.spool") {
		t.Fatalf("Validate with audit.spool sometimes: %v", err)
	}
}
