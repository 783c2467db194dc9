package config

import (
	"net"
	"path/filepath"
)

// BootstrapPath is where EnsureBootstrapAdmin writes the admin credentials.
func (c Config) BootstrapPath() string { return filepath.Join(c.DataDir, "admin-credentials.json") }

// Endpoint is the base URL a client on this host reaches kmsd at, from
// Listen and TLS: an unspecified host (":8400", "0.0.0.0", "::") becomes
// the loopback address. It is written into the bootstrap credentials file.
func (c Config) Endpoint() string {
	scheme := "http"
	if c.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
