package main

import (
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzCheckEndpoint: never panics; whatever is accepted without
// --allow-remote is an http(s) URL whose host is loopback.
func FuzzCheckEndpoint(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8400", "http://[::1]", "https://localhost/x", "http://10.0.0.1", "http://[::ffff:7f00:1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, endpoint string) {
		err := checkEndpoint(endpoint, false)
		if err != nil {
			if !errors.Is(err, ErrUsage) && !errors.Is(err, ErrRemoteEndpoint) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		u, perr := url.Parse(endpoint)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("accepted %q", endpoint)
		}
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") {
			return
		}
		ip, perr := netip.ParseAddr(host)
		if perr != nil || !ip.Unmap().IsLoopback() {
			t.Fatalf("accepted non-loopback %q (host %q)", endpoint, host)
		}
	})
}

// FuzzParseCredentials: never panics, never quotes the input in an error,
// and accepts only documents with both fields.
func FuzzParseCredentials(f *testing.F) {
	for _, s := range []string{
		`{"access_key_id":"AK","secret_access_key":"SK","region":"local"}`,
		`{"access_key_id":"AK"}`, `[]`, `null`, `{"secret_access_key":"SECRETSECRET"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := parseCredentials(raw)
		if err != nil {
			if !errors.Is(err, ErrCredentials) {
				t.Fatalf("unclassified error %v", err)
			}
			if len(raw) >= 8 && strings.Contains(err.Error(), string(raw)) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			t.Fatalf("accepted incomplete credentials from %q", raw)
		}
	})
}

// FuzzParseLists: the list flags never panic and only yield valid,
// distinct values.
func FuzzParseLists(f *testing.F) {
	for _, s := range []string{"1,16,64", "encrypt,baseline", "SOFTWARE,hsm", " 4 ,4", ",", "1e3", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if cs, err := parseConcurrency(s); err == nil {
			if len(cs) == 0 {
				t.Fatalf("empty concurrency list from %q", s)
			}
			for i, c := range cs {
				if c < 1 || c > maxConcurrency || slices.Contains(cs[:i], c) {
					t.Fatalf("bad concurrency list %v from %q", cs, s)
				}
			}
		} else if !errors.Is(err, ErrUsage) {
			t.Fatalf("unclassified error %v", err)
		}
		if ops, err := parseOps(s); err == nil {
			known := []string{opHealthz, opDescribeKey, opEncrypt, opDecrypt, opGenerateDataKey}
			seenCrypto := false
			for i, op := range ops {
				if !slices.Contains(known, op) || slices.Contains(ops[:i], op) {
					t.Fatalf("bad ops %v from %q", ops, s)
				}
				isBase := op == opHealthz || op == opDescribeKey
				if isBase && seenCrypto {
					t.Fatalf("baseline after a crypto op in %v", ops)
				}
				seenCrypto = seenCrypto || !isBase
			}
		} else if !errors.Is(err, ErrUsage) {
			t.Fatalf("unclassified error %v", err)
		}
		if ps, err := parseProtections(s); err == nil {
			for i, p := range ps {
				if (p != protSoftware && p != protHSM) || slices.Contains(ps[:i], p) {
					t.Fatalf("bad protections %v from %q", ps, s)
				}
			}
		} else if !errors.Is(err, ErrUsage) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
