package config_test

import (
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
