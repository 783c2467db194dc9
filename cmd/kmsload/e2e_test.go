package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestLoadAgainstKmsd runs the whole command for about a second per cell
// at concurrency 4 against a real in-process kmsd (full middleware, SigV4,
// audit, SQLite, dev HSM backend) and checks every crypto cell succeeded.
func TestLoadAgainstKmsd(t *testing.T) {
	srv := kmstest.Start(t)
	env := envOf(map[string]string{"KMS_ACCESS_KEY_ID": srv.AccessKeyID, "KMS_SECRET_ACCESS_KEY": srv.SecretAccessKey, "KMS_REGION": srv.Region})
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"--endpoint", srv.URL, "--ops", "encrypt,decrypt,generate-data-key,baseline",
		"--protection", "SOFTWARE,HSM", "--concurrency", "4", "--duration", "1s", "--warmup", "50ms", "-o", "json",
	}, env, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, stdout.String())
	}
	type key struct{ op, prot string }
	rows := map[key]resultRow{}
	for _, r := range rep.Results {
		if r.Concurrency != 4 {
			t.Fatalf("row at concurrency %d", r.Concurrency)
		}
		rows[key{r.Op, r.Protection}] = r
	}
	want := []key{{opHealthz, ""}, {opDescribeKey, ""}}
	for _, op := range []string{opEncrypt, opDecrypt, opGenerateDataKey} {
		for _, p := range []string{protSoftware, protHSM} {
			want = append(want, key{op, p})
		}
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rep.Results)
	}
	for _, k := range want {
		r, ok := rows[k]
		switch {
		case !ok:
			t.Errorf("no row for %v", k)
		case r.Errors != 0:
			t.Errorf("%v: %d errors: %v", k, r.Errors, r.ErrorKinds)
		case r.Requests == 0 || r.OpsPerSec <= 0:
			t.Errorf("%v: no successful operations: %+v", k, r)
		case r.P50Ms <= 0 || r.P50Ms > r.P99Ms || r.P99Ms > r.MaxMs:
			t.Errorf("%v: inconsistent latencies p50 %v p99 %v max %v", k, r.P50Ms, r.P99Ms, r.MaxMs)
		case k.op != opHealthz && r.RatioHealthz == nil:
			t.Errorf("%v: no ratio to healthz", k)
		case r.ClientCPUPct <= 0:
			t.Errorf("%v: no client CPU time recorded", k)
		case r.ElapsedSec < 0.9 || r.ElapsedSec > 10:
			t.Errorf("%v: measured for %.2fs, want about 1s", k, r.ElapsedSec)
		}
	}
	if len(rep.Meta.Keys) != 2 || rep.Meta.Keys[protSoftware] == "" || rep.Meta.Keys[protHSM] == "" {
		t.Fatalf("keys in report: %v", rep.Meta.Keys)
	}

	// The keys kmsload created are of the right level and scheduled for deletion.
	client, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	for prot, id := range rep.Meta.Keys {
		md, err := client.DescribeKey(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if string(md.ProtectionLevel) != prot || md.KeyState != kmsclient.KeyStatePendingDeletion {
			t.Errorf("key %s: protection %s state %s, want %s PendingDeletion", id, md.ProtectionLevel, md.KeyState, prot)
		}
	}
}

// TestBadCredentialIsCountedNotHung checks that a wrong secret makes every
// measured request an error, classified as Unauthenticated, and that the
// cell ends on time; and that the command itself refuses to start.
func TestBadCredentialIsCountedNotHung(t *testing.T) {
	srv := kmstest.Start(t)
	good, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md, err := good.CreateKey(ctx, kmsclient.CreateKeyInput{ProtectionLevel: protSoftware})
	if err != nil {
		t.Fatal(err)
	}
	plaintext := []byte("0123456789abcdef0123456789abcdef")
	enc, err := good.Encrypt(ctx, md.KeyID, plaintext, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	key := &benchKey{protection: protSoftware, id: md.KeyID, plaintext: plaintext, blob: enc.CiphertextBlob}

	opts, err := parseArgs([]string{"--endpoint", srv.URL, "--concurrency", "4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	bad := credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey + "x", Region: srv.Region}
	tg, err := newTarget(opts, bad, bad.Region)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{opEncrypt, opDecrypt, opGenerateDataKey, opDescribeKey} {
		t.Run(op, func(t *testing.T) {
			start := time.Now()
			cr := runCell(ctx, cellConfig{Concurrency: 4, Duration: 300 * time.Millisecond, MaxRequests: 100_000, Timeout: 2 * time.Second}, tg.op(op, key))
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("cell took %v", took)
			}
			if len(cr.Latencies) != 0 || cr.Errors == 0 {
				t.Fatalf("bad credential: %d successes, %d errors", len(cr.Latencies), cr.Errors)
			}
			if cr.ErrorKind["Unauthenticated (401)"] != cr.Errors {
				t.Fatalf("error kinds %v, want all Unauthenticated", cr.ErrorKind)
			}
		})
	}

	// The unsigned baseline still works with the same transport.
	if cr := runCell(ctx, cellConfig{Concurrency: 4, Duration: 100 * time.Millisecond, MaxRequests: 1000, Timeout: time.Second}, tg.op(opHealthz, nil)); cr.Errors != 0 || len(cr.Latencies) == 0 {
		t.Fatalf("healthz: %d ok, %d errors %v", len(cr.Latencies), cr.Errors, cr.ErrorKind)
	}

	// The command fails fast in setup, naming the cause.
	env := envOf(map[string]string{"KMS_ACCESS_KEY_ID": bad.AccessKeyID, "KMS_SECRET_ACCESS_KEY": bad.SecretAccessKey})
	var stderr bytes.Buffer
	start := time.Now()
	err = run(ctx, []string{"--endpoint", srv.URL, "--duration", "1s"}, env, io.Discard, &stderr)
	if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("run with a bad secret: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("run with a bad secret took %v", took)
	}
	if strings.Contains(err.Error()+stderr.String(), bad.SecretAccessKey) {
		t.Fatal("the secret appears in the output")
	}
}

// TestDecryptChecksPlaintext makes sure a decrypt that returns other bytes
// is an error, not a success.
func TestDecryptChecksPlaintext(t *testing.T) {
	srv := kmstest.Start(t)
	creds := credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region}
	opts, err := parseArgs([]string{"--endpoint", srv.URL}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := newTarget(opts, creds, creds.Region)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md, err := tg.client.CreateKey(ctx, kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	pt := bytes.Repeat([]byte{7}, benchPlaintextSize)
	enc, err := tg.client.Encrypt(ctx, md.KeyID, pt, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		plaintext []byte
		want      error
	}{
		{"matching", pt, nil},
		{"different", bytes.Repeat([]byte{8}, benchPlaintextSize), errWrongPlaintext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := &benchKey{id: md.KeyID, plaintext: tc.plaintext, blob: enc.CiphertextBlob}
			if err := tg.op(opDecrypt, k)(ctx); !errors.Is(err, tc.want) {
				t.Fatalf("decrypt op: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestExistingKey checks --key-id: the key's own protection level is used,
// a level outside --protection is refused, and the key is left alone.
func TestExistingKey(t *testing.T) {
	srv := kmstest.Start(t)
	client, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md, err := client.CreateKey(ctx, kmsclient.CreateKeyInput{ProtectionLevel: protHSM})
	if err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"KMS_ACCESS_KEY_ID": srv.AccessKeyID, "KMS_SECRET_ACCESS_KEY": srv.SecretAccessKey})
	tests := []struct {
		name    string
		prot    string
		wantErr error
		wantOps int
	}{
		{"level in the list", "SOFTWARE,HSM", nil, 1},
		{"level not in the list", "SOFTWARE", ErrUsage, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := run(ctx, []string{"--endpoint", srv.URL, "--key-id", md.KeyID, "--protection", tc.prot, "--ops", "encrypt",
				"--concurrency", "1", "--duration", "200ms", "--warmup", "0s", "-o", "json"}, env, &stdout, io.Discard)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("run: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			var rep report
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != tc.wantOps || rep.Results[0].Protection != protHSM || rep.Results[0].Requests == 0 || rep.Meta.Keys[protHSM] != md.KeyID {
				t.Fatalf("report %+v", rep)
			}
		})
	}
	after, err := client.DescribeKey(ctx, md.KeyID)
	if err != nil || after.KeyState != kmsclient.KeyStateEnabled {
		t.Fatalf("the caller's key was touched: %+v %v", after, err)
	}
}

// TestInterruptedRunReportsCompletedCells: a signal mid-run stops the
// load at once, still prints the cells that completed and cleans up keys.
func TestInterruptedRunReportsCompletedCells(t *testing.T) {
	srv := kmstest.Start(t)
	env := envOf(map[string]string{"KMS_ACCESS_KEY_ID": srv.AccessKeyID, "KMS_SECRET_ACCESS_KEY": srv.SecretAccessKey})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(1200*time.Millisecond, cancel)
	var stdout bytes.Buffer
	start := time.Now()
	err := run(ctx, []string{"--endpoint", srv.URL, "--ops", "baseline,encrypt", "--protection", "SOFTWARE",
		"--concurrency", "2", "--duration", "500ms", "--warmup", "0s", "-o", "json"}, env, &stdout, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("interrupted run took %v", took)
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("partial report: %v\n%s", err, stdout.String())
	}
	if n := len(rep.Results); n < 1 || n >= 3 {
		t.Fatalf("%d completed cells reported, want 1 or 2 of 3", n)
	}
	client, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	md, err := client.DescribeKey(context.Background(), rep.Meta.Keys[protSoftware])
	if err != nil || md.KeyState != kmsclient.KeyStatePendingDeletion {
		t.Fatalf("key after interrupted run: %+v %v", md, err)
	}
}
