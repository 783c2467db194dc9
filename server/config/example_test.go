package config_test

import (
	"fmt"

	"github.com/kmsgo/kmsgo/server/config"
)

// Load merges the YAML file (none here) with KMSD_* environment overrides.
func ExampleLoad() {
	env := map[string]string{"KMSD_LISTEN": "127.0.0.1:9400", "KMSD_KMS_METADATA_TTL": "1s"}
	c, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Listen, c.HSM.Backend, c.Database.Driver, c.KMS.MetadataTTL)
	// Output: 127.0.0.1:9400 dev sqlite 1s
}
