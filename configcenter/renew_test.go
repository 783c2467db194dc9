package configcenter_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

var anyMarker = regexp.MustCompile(`(ENC\(|\{cipher\}|secret:)([A-Za-z0-9+/=]+)`)

// versionOf returns the key version in the header of the base64 text b.
func versionOf(t *testing.T, b string) int {
	t.Helper()
	blob, err := base64.StdEncoding.DecodeString(b)
	if err != nil {
		t.Fatal(err)
	}
	h, err := kmsclient.ParseCiphertextHeader(blob)
	if err != nil {
		t.Fatal(err)
	}
	return h.KeyVersion
}

func TestRenewText(t *testing.T) {
	k := startKMS(t)
	ctx := context.Background()
	appCtx := map[string]string{"app": "orders"}
	strip := func(s string) string { return strings.TrimSuffix(strings.TrimPrefix(s, "ENC("), ")") }
	v1 := k.enc(t, "one", nil)
	v1ctx := k.enc(t, "ctx-secret", appCtx)
	// A second key, not rotated: its values are current.
	other, err := k.client.CreateKey(ctx, kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	otherOut, err := k.client.Encrypt(ctx, other.KeyID, []byte("other"), nil)
	if err != nil {
		t.Fatal(err)
	}
	otherEnc := "ENC(" + base64.StdEncoding.EncodeToString(otherOut.CiphertextBlob) + ")"
	if _, err := k.client.RotateKey(ctx, k.keyID); err != nil {
		t.Fatal(err)
	}
	v2 := k.enc(t, "two", nil)

	tests := []struct {
		name                              string
		opts                              configcenter.RenewOptions
		text                              string
		scanned, renewed, skipped, failed int
		plaintexts                        []string // of the ENC values after, in order
	}{
		{"yaml with comments", configcenter.RenewOptions{},
			"# top\na: " + v1 + "  # trailing\nb: " + v2 + "\nc: x\n", 2, 1, 1, 0, []string{"one", "two"}},
		{"embedded in a URL and in a comment", configcenter.RenewOptions{},
			"url: jdbc://u:" + v1 + "@h/db\n# was: " + v1 + "\n", 2, 2, 0, 0, []string{"one", "one"}},
		{"json", configcenter.RenewOptions{}, `{"a":"` + v1 + `","n":1}`, 1, 1, 0, 0, []string{"one"}},
		{"other key is current", configcenter.RenewOptions{}, "o=" + otherEnc + "\n", 1, 0, 1, 0, []string{"other"}},
		{"context given", configcenter.RenewOptions{EncryptionContext: appCtx}, "s: " + v1ctx + "\n", 1, 1, 0, 0, nil},
		{"context missing fails closed", configcenter.RenewOptions{}, "s: " + v1ctx + "\n", 1, 0, 0, 1, nil},
		{"not a kmsd ciphertext", configcenter.RenewOptions{}, "s: ENC(AAAA)\nt: ENC(not base64!)\n", 1, 0, 0, 1, nil},
		{"custom marker", configcenter.RenewOptions{Marker: configcenter.Marker{Prefix: "{cipher}", Suffix: ""}},
			"s: {cipher}" + strip(v1) + "\n", 1, 1, 0, 0, nil},
		{"dry run", configcenter.RenewOptions{DryRun: true}, "a: " + v1 + "\n", 1, 1, 0, 0, []string{"one"}},
		{"no markers", configcenter.RenewOptions{}, "a: b\n", 0, 0, 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Client = k.client
			r, err := configcenter.NewRenewal(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, rep, err := r.RenewText(ctx, "doc", []byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Scanned != tc.scanned || rep.Renewed != tc.renewed || rep.Skipped != tc.skipped || rep.Failed != tc.failed || rep.Documents != 1 {
				t.Fatalf("report %+v", rep)
			}
			if len(rep.Failures) != tc.failed || (tc.failed > 0) != (rep.Err() != nil) {
				t.Fatalf("failures %+v", rep.Failures)
			}
			if anyMarker.ReplaceAllString(string(out), "$1*") != anyMarker.ReplaceAllString(tc.text, "$1*") {
				t.Fatalf("text outside the markers changed:\n%s\n%s", tc.text, out)
			}
			if (string(out) != tc.text) != (tc.renewed > 0 && !tc.opts.DryRun) {
				t.Fatalf("changed=%v", string(out) != tc.text)
			}
			if tc.failed > 0 && string(out) != tc.text {
				t.Fatal("a failed value was replaced")
			}
			var pts []string
			for _, m := range anyMarker.FindAllStringSubmatch(string(out), -1) {
				blob, _ := base64.StdEncoding.DecodeString(m[2])
				h, _ := kmsclient.ParseCiphertextHeader(blob)
				if h.KeyID == k.keyID && !tc.opts.DryRun && tc.failed == 0 && h.KeyVersion != 2 {
					t.Fatalf("left under version %d", h.KeyVersion)
				}
				if tc.plaintexts == nil {
					continue
				}
				res, err := k.client.Decrypt(ctx, blob, tc.opts.EncryptionContext)
				if err != nil {
					t.Fatal(err)
				}
				pts = append(pts, string(res.Plaintext))
			}
			if tc.plaintexts != nil && fmt.Sprint(pts) != fmt.Sprint(tc.plaintexts) {
				t.Fatalf("plaintexts %q", pts)
			}
		})
	}
	// The context value renewed with its context decrypts with it.
	r, _ := configcenter.NewRenewal(configcenter.RenewOptions{Client: k.client, EncryptionContext: appCtx})
	out, _, err := r.RenewText(ctx, "doc", []byte(v1ctx))
	if err != nil || versionOf(t, strip(string(out))) != 2 {
		t.Fatalf("%v", err)
	}
	blob, _ := base64.StdEncoding.DecodeString(strip(string(out)))
	if res, err := k.client.Decrypt(ctx, blob, appCtx); err != nil || string(res.Plaintext) != "ctx-secret" {
		t.Fatalf("context value: %v", err)
	}
}

// kmsd unreachable: the whole text fails with ErrKMSUnavailable and no
// output, so nothing is written.
func TestRenewTextKMSDown(t *testing.T) {
	k := startKMS(t)
	v := k.enc(t, "x", nil)
	down, err := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "AK", SecretAccessKey: "SK", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := configcenter.NewRenewal(configcenter.RenewOptions{Client: down})
	out, _, err := r.RenewText(context.Background(), "doc", []byte("a: "+v+"\n"))
	if !errors.Is(err, configcenter.ErrKMSUnavailable) || out != nil {
		t.Fatalf("out %q err %v", out, err)
	}
	if _, err := configcenter.NewRenewal(configcenter.RenewOptions{}); !errors.Is(err, configcenter.ErrBadOptions) {
		t.Fatal(err)
	}
}

// A disabled key: its values fail (kept as they are), others proceed.
func TestRenewTextDisabledKey(t *testing.T) {
	k := startKMS(t)
	ctx := context.Background()
	v := k.enc(t, "x", nil)
	if _, err := k.client.RotateKey(ctx, k.keyID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.client.DisableKey(ctx, k.keyID); err != nil {
		t.Fatal(err)
	}
	r, _ := configcenter.NewRenewal(configcenter.RenewOptions{Client: k.client})
	text := "a: " + v + "\nb: " + v + "\n"
	out, rep, err := r.RenewText(ctx, "doc", []byte(text))
	if err != nil || string(out) != text || rep.Failed != 2 || rep.Renewed != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
}
