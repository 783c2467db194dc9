package config

import "testing"

func TestConfigEndpoint(t *testing.T) {
	for _, tc := range []struct {
		listen, cert, want string
	}{
		{"127.0.0.1:8400", "", "http://127.0.0.1:8400"},
		{":9400", "", "http://127.0.0.1:9400"},
		{"0.0.0.0:9400", "c.pem", "https://127.0.0.1:9400"},
		{"[::]:9400", "", "http://[::1]:9400"},
		{"kms.internal:8443", "c.pem", "https://kms.internal:8443"},
		{"no-port", "", ""},
	} {
		c := Config{Listen: tc.listen, TLS: TLSConfig{CertFile: tc.cert}}
		if got := c.Endpoint(); got != tc.want {
			t.Errorf("Endpoint(%q, tls=%v) = %q, want %q", tc.listen, tc.cert != "", got, tc.want)
		}
	}
}
