package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
		check   func(t *testing.T, o options)
	}{
		{
			name: "defaults", args: nil,
			check: func(t *testing.T, o options) {
				wantOps := []string{opHealthz, opDescribeKey, opEncrypt, opDecrypt, opGenerateDataKey}
				if !slices.Equal(o.Ops, wantOps) || !slices.Equal(o.Protections, []string{protSoftware, protHSM}) ||
					!slices.Equal(o.Concurrency, []int{1, 16, 64}) || o.Duration != 5*time.Second ||
					o.Endpoint != "http://127.0.0.1:8400" || o.Output != "table" || o.MaxRequests != 1_000_000 {
					t.Fatalf("defaults: %+v", o)
				}
			},
		},
		{
			name: "baselines first, duplicates dropped, case folded",
			args: []string{"--ops", "Decrypt,describe-key,encrypt,baseline,decrypt", "--protection", "hsm,HSM", "--concurrency", "64, 4,64"},
			check: func(t *testing.T, o options) {
				if want := []string{opHealthz, opDescribeKey, opDecrypt, opEncrypt}; !slices.Equal(o.Ops, want) {
					t.Fatalf("ops %v, want %v", o.Ops, want)
				}
				if !slices.Equal(o.Protections, []string{protHSM}) || !slices.Equal(o.Concurrency, []int{64, 4}) {
					t.Fatalf("protections %v concurrency %v", o.Protections, o.Concurrency)
				}
			},
		},
		{
			name: "healthz only needs no key", args: []string{"--ops", "healthz"},
			check: func(t *testing.T, o options) {
				if o.needsKeys() {
					t.Fatal("healthz-only run claims to need keys")
				}
			},
		},
		{
			name: "describe-key needs a key", args: []string{"--ops", "describe-key"},
			check: func(t *testing.T, o options) {
				if !o.needsKeys() {
					t.Fatal("describe-key run claims to need no key")
				}
			},
		},
		{
			name: "trailing slash trimmed", args: []string{"--endpoint", "http://localhost:9/", "-o", "json"},
			check: func(t *testing.T, o options) {
				if o.Endpoint != "http://localhost:9" || o.Output != "json" {
					t.Fatalf("%+v", o)
				}
			},
		},
		{
			name: "remote allowed explicitly", args: []string{"--endpoint", "https://kms.example.com", "--allow-remote"},
			check: func(t *testing.T, o options) {
				if !o.AllowRemote {
					t.Fatal("AllowRemote not set")
				}
			},
		},
		{name: "help", args: []string{"-h"}, wantErr: flag.ErrHelp},
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: ErrUsage},
		{name: "positional argument", args: []string{"extra"}, wantErr: ErrUsage},
		{name: "unknown op", args: []string{"--ops", "encrypt,sign"}, wantErr: ErrUsage},
		{name: "empty op item", args: []string{"--ops", "encrypt,,decrypt"}, wantErr: ErrUsage},
		{name: "empty ops", args: []string{"--ops", ""}, wantErr: ErrUsage},
		{name: "unknown protection", args: []string{"--protection", "EXTERNAL"}, wantErr: ErrUsage},
		{name: "zero concurrency", args: []string{"--concurrency", "0"}, wantErr: ErrUsage},
		{name: "negative concurrency", args: []string{"--concurrency", "1,-4"}, wantErr: ErrUsage},
		{name: "huge concurrency", args: []string{"--concurrency", "1025"}, wantErr: ErrUsage},
		{name: "non-numeric concurrency", args: []string{"--concurrency", "16x"}, wantErr: ErrUsage},
		{name: "zero duration", args: []string{"--duration", "0s"}, wantErr: ErrUsage},
		{name: "unbounded duration", args: []string{"--duration", "11m"}, wantErr: ErrUsage},
		{name: "negative warmup", args: []string{"--warmup", "-1s"}, wantErr: ErrUsage},
		{name: "zero max requests", args: []string{"--max-requests", "0"}, wantErr: ErrUsage},
		{name: "too many max requests", args: []string{"--max-requests", "10000001"}, wantErr: ErrUsage},
		{name: "zero timeout", args: []string{"--timeout", "0s"}, wantErr: ErrUsage},
		{name: "bad output", args: []string{"-o", "yaml"}, wantErr: ErrUsage},
		{name: "remote endpoint refused", args: []string{"--endpoint", "http://10.0.0.1:8400"}, wantErr: ErrRemoteEndpoint},
		{name: "remote name refused", args: []string{"--endpoint", "https://kms.example.com"}, wantErr: ErrRemoteEndpoint},
		{name: "not a URL", args: []string{"--endpoint", "127.0.0.1:8400"}, wantErr: ErrUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseArgs(tc.args, io.Discard)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestCheckEndpoint(t *testing.T) {
	tests := []struct {
		endpoint    string
		allowRemote bool
		wantErr     error
	}{
		{"http://127.0.0.1:8400", false, nil},
		{"http://127.8.9.10", false, nil},
		{"https://localhost:8443/prefix", false, nil},
		{"http://LOCALHOST", false, nil},
		{"http://[::1]:8400", false, nil},
		{"http://[::ffff:127.0.0.1]:8400", false, nil},
		{"http://128.0.0.1", false, ErrRemoteEndpoint},
		{"http://0.0.0.0:8400", false, ErrRemoteEndpoint},
		{"http://[::]:8400", false, ErrRemoteEndpoint},
		{"http://[fe80::1%25lo]:8400", false, ErrRemoteEndpoint},
		{"http://localhost.example.com", false, ErrRemoteEndpoint},
		{"http://127.0.0.1.nip.io", false, ErrRemoteEndpoint},
		{"http://192.168.1.5", true, nil},
		{"ftp://127.0.0.1", false, ErrUsage},
		{"http://user:pw@127.0.0.1", false, ErrUsage},
		{"http://127.0.0.1/?x=1", false, ErrUsage},
		{"http://127.0.0.1/#frag", false, ErrUsage},
		{"http://127.0.0.1:0", false, ErrUsage},
		{"http://127.0.0.1:99999", false, ErrUsage},
		{"http://", false, ErrUsage},
		{"", false, ErrUsage},
	}
	for _, tc := range tests {
		t.Run(tc.endpoint, func(t *testing.T) {
			err := checkEndpoint(tc.endpoint, tc.allowRemote)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("checkEndpoint(%q, %v) = %v, want %v", tc.endpoint, tc.allowRemote, err, tc.wantErr)
			}
		})
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "s3cr3t-value-never-in-errors"
	good := write("good.json", `{"access_key_id":"AK1","secret_access_key":"`+secret+`","region":"eu"}`, 0o600)
	env := map[string]string{"KMS_ACCESS_KEY_ID": "AKENV", "KMS_SECRET_ACCESS_KEY": "SKENV"}
	tests := []struct {
		name    string
		path    string
		env     map[string]string
		want    credentials
		wantErr error
	}{
		{name: "file", path: good, want: credentials{AccessKeyID: "AK1", SecretAccessKey: secret, Region: "eu"}},
		{name: "file wins over env", path: good, env: env, want: credentials{AccessKeyID: "AK1", SecretAccessKey: secret, Region: "eu"}},
		{name: "env", env: env, want: credentials{AccessKeyID: "AKENV", SecretAccessKey: "SKENV"}},
		{name: "env with region", env: map[string]string{"KMS_ACCESS_KEY_ID": "A", "KMS_SECRET_ACCESS_KEY": "S", "KMS_REGION": "r"},
			want: credentials{AccessKeyID: "A", SecretAccessKey: "S", Region: "r"}},
		{name: "env missing secret", env: map[string]string{"KMS_ACCESS_KEY_ID": "A"}, wantErr: ErrCredentials},
		{name: "nothing", wantErr: ErrCredentials},
		{name: "world readable", path: write("open.json", `{"access_key_id":"A","secret_access_key":"`+secret+`"}`, 0o644), wantErr: ErrCredentials},
		{name: "group readable", path: write("group.json", `{"access_key_id":"A","secret_access_key":"`+secret+`"}`, 0o640), wantErr: ErrCredentials},
		{name: "missing file", path: filepath.Join(dir, "absent.json"), wantErr: ErrCredentials},
		{name: "directory", path: dir, wantErr: ErrCredentials},
		{name: "not JSON", path: write("bad.json", `access_key_id=A `+secret, 0o600), wantErr: ErrCredentials},
		{name: "no secret", path: write("nosecret.json", `{"access_key_id":"A"}`, 0o600), wantErr: ErrCredentials},
		{name: "too big", path: write("big.json", `{"access_key_id":"A","secret_access_key":"`+secret+`","region":"`+strings.Repeat("x", maxCredFileSize)+`"}`, 0o600), wantErr: ErrCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadCredentials(tc.path, func(k string) string { return tc.env[k] })
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			if strings.Contains(got.String(), got.SecretAccessKey) {
				t.Fatalf("String() leaks the secret: %s", got)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{ErrUsage, 2},
		{ErrRemoteEndpoint, 2},
		{ErrSetup, 1},
		{ErrRequestsFailed, 1},
		{errors.New("other"), 1},
	}
	for _, tc := range tests {
		if got := exitCode(tc.err, io.Discard); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
