package nacos

import (
	"errors"
	"strings"
	"testing"
)

// FuzzServerConfigs: a server address is accepted with a host and a port
// whose gRPC port (port+1000) exists, or refused with ErrConfig; never a
// panic.
func FuzzServerConfigs(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8848", "http://nacos:8848", "https://[::1]:8848/", "nacos", "ftp://h:1", "h:64536", "h:0", ":8848", "h:-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		out, err := serverConfigs([]string{addr})
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		sc := out[0]
		if sc.IpAddr == "" || sc.Port == 0 || sc.Port+1000 > 65535 {
			t.Fatalf("accepted %q as %+v", addr, sc)
		}
		if sc.Scheme != "http" && sc.Scheme != "https" {
			t.Fatalf("scheme %q", sc.Scheme)
		}
		if strings.Contains(sc.IpAddr, "/") {
			t.Fatalf("host %q holds a path", sc.IpAddr)
		}
	})
}
