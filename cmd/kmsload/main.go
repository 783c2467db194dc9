package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err and maps it to the exit status: 0 ok (or --help),
// 2 bad usage (including a refused remote endpoint), 1 anything else.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage), errors.Is(err, ErrRemoteEndpoint):
		fmt.Fprintln(stderr, err)
		return 2
	default:
		fmt.Fprintln(stderr, err)
		return 1
	}
}

// benchPlaintextSize is the payload of Encrypt/Decrypt and the data key
// size of GenerateDataKey (AES-256): the "32 bytes".
const benchPlaintextSize = 32

// benchContext is the encryption context of every crypto request.
var benchContext = map[string]string{"app": "kmsload"}

// target is what the load runs against.
type target struct {
	endpoint string
	ginURL   string // bare gin server, "" if none
	hc       *http.Client
	client   *kmsclient.Client
}

// run is the whole command: parse, set up keys, load every cell, report.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	creds, err := loadCredentials(opts.CredentialsFile, getenv)
	if err != nil {
		return err
	}
	region := opts.Region
	if region == "" {
		region = creds.Region
	}
	tg, err := newTarget(opts, creds, region)
	if err != nil {
		return err
	}
	defer tg.hc.CloseIdleConnections()

	rep := newReport(opts)
	if err := tg.healthz(ctx); err != nil {
		return fmt.Errorf("%w: %s/healthz: %v", ErrSetup, opts.Endpoint, err)
	}
	var keys []benchKey
	if opts.needsKeys() {
		keys, err = tg.setupKeys(ctx, opts, stderr)
		if err != nil {
			return err
		}
		if !opts.KeepKeys {
			defer tg.cleanupKeys(keys, stderr)
		}
		for _, k := range keys {
			rep.Meta.Keys[k.protection] = k.id
		}
	}

	if opts.GinEndpoint != "" {
		if err := tg.gin(ctx); err != nil {
			return fmt.Errorf("%w: %s/post: %v", ErrSetup, opts.GinEndpoint, err)
		}
	}
	cells := plan(opts, keys)
	for _, c := range cells {
		fn := tg.op(c.op, c.key)
		pid := opts.ServerPID
		if c.op == opGin {
			pid = opts.GinPID
		}
		cr := runCell(ctx, cellConfig{
			Concurrency: c.concurrency, Warmup: opts.Warmup, Duration: opts.Duration,
			MaxRequests: opts.MaxRequests, Timeout: opts.Timeout, ServerPID: pid,
		}, fn)
		if ctx.Err() != nil {
			// Interrupted: report the cells that completed.
			break
		}
		s := summarize(cr.Latencies, cr.Errors, cr.Elapsed)
		row := rep.add(c, s, cr.ErrorKind, cr.ClientCPU, cr.ServerCPU)
		fmt.Fprintf(stderr, "kmsload: c=%-3d %-17s %-8s %8d req %5d err %10.0f ops/s p99 %.3f ms\n",
			row.Concurrency, row.Op, row.Protection, row.Requests, row.Errors, row.OpsPerSec, row.P99Ms)
	}
	rep.finish()
	if err := rep.write(stdout, opts.Output); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kmsload: interrupted after %d of %d cells: %w", len(rep.Results), len(cells), err)
	}
	if rep.totalErrors() > 0 {
		return fmt.Errorf("%w: %d of %d measured requests", ErrRequestsFailed, rep.totalErrors(), rep.totalRequests())
	}
	return nil
}

func newTarget(opts options, creds credentials, region string) (*target, error) {
	maxConc := slices.Max(opts.Concurrency)
	hc := &http.Client{
		Transport: newTransport(maxConc),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	client, err := kmsclient.New(kmsclient.Config{
		Endpoint:        opts.Endpoint,
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
		Region:          region,
		HTTPClient:      hc,
		Timeout:         opts.Timeout,
		MaxRetries:      -1, // count failures, never hide them behind retries
		UserAgent:       "kmsgo-kmsload",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return &target{endpoint: opts.Endpoint, ginURL: opts.GinEndpoint, hc: hc, client: client}, nil
}

// ginBody is what the gin baseline posts: the shape and size of an
// Encrypt request with a 32-byte plaintext.
var ginBody = []byte(`{"key_id":"alias/kmsload","plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","encryption_context":{"app":"kmsload"}}`)

// gin posts ginBody to the bare gin server (unsigned, no crypto): the
// ceiling of an HTTP JSON round trip on this machine.
func (t *target) gin(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.ginURL+"/post", bytes.NewReader(ginBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{code: resp.StatusCode}
	}
	return nil
}

// healthz is the unsigned baseline request.
func (t *target) healthz(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.endpoint+"/healthz", http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kmsgo-kmsload")
	resp, err := t.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{code: resp.StatusCode}
	}
	return nil
}

// benchKey is the key used for one protection level, with a blob to
// decrypt and the plaintext it must decrypt to.
type benchKey struct {
	protection string
	id         string
	created    bool
	plaintext  []byte // random benchmark data, not a secret
	blob       []byte
}

// setupKeys describes --key-id or creates one key per protection level,
// and encrypts the decrypt benchmark's blob under each.
func (t *target) setupKeys(ctx context.Context, opts options, stderr io.Writer) ([]benchKey, error) {
	var keys []benchKey
	if opts.KeyID != "" {
		md, err := t.client.DescribeKey(ctx, opts.KeyID)
		if err != nil {
			return nil, fmt.Errorf("%w: describe --key-id: %v", ErrSetup, err)
		}
		if md.KeyState != kmsclient.KeyStateEnabled {
			return nil, fmt.Errorf("%w: key %s is %s", ErrSetup, md.KeyID, md.KeyState)
		}
		if !slices.Contains(opts.Protections, string(md.ProtectionLevel)) {
			return nil, fmt.Errorf("%w: key %s has protection level %s, not in --protection %v",
				ErrUsage, md.KeyID, md.ProtectionLevel, opts.Protections)
		}
		keys = append(keys, benchKey{protection: string(md.ProtectionLevel), id: md.KeyID})
	} else {
		for _, p := range opts.Protections {
			md, err := t.client.CreateKey(ctx, kmsclient.CreateKeyInput{
				Description:     "kmsload benchmark key",
				ProtectionLevel: kmsapi.ProtectionLevel(p),
				Tags:            map[string]string{"created-by": "kmsload"},
			})
			if err != nil {
				t.cleanupKeys(keys, stderr)
				return nil, fmt.Errorf("%w: create %s key: %v", ErrSetup, p, err)
			}
			keys = append(keys, benchKey{protection: p, id: md.KeyID, created: true})
		}
	}
	for i := range keys {
		k := &keys[i]
		k.plaintext = make([]byte, benchPlaintextSize)
		_, _ = rand.Read(k.plaintext) // crypto/rand.Read never fails (Go >= 1.24)
		res, err := t.client.Encrypt(ctx, k.id, k.plaintext, benchContext)
		if err != nil {
			t.cleanupKeys(keys, stderr)
			return nil, fmt.Errorf("%w: encrypt under %s key: %v", ErrSetup, k.protection, err)
		}
		k.blob = res.CiphertextBlob
	}
	return keys, nil
}

// cleanupKeys schedules the deletion of the keys kmsload created (7 days,
// the shortest window), even when the run was interrupted.
func (t *target) cleanupKeys(keys []benchKey, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range keys {
		if !k.created {
			continue
		}
		if _, err := t.client.ScheduleKeyDeletion(ctx, k.id, 7); err != nil {
			fmt.Fprintf(stderr, "kmsload: schedule deletion of key %s: %v\n", k.id, err)
		}
	}
}

// errWrongPlaintext is a decrypt that answered with other bytes.
var errWrongPlaintext = errors.New("kmsload: decrypt returned the wrong plaintext")

// op returns the request function of an operation on key (nil for healthz).
func (t *target) op(op string, key *benchKey) opFunc {
	switch op {
	case opHealthz:
		return t.healthz
	case opGin:
		return t.gin
	case opDescribeKey:
		return func(ctx context.Context) error {
			_, err := t.client.DescribeKey(ctx, key.id)
			return err
		}
	case opEncrypt:
		return func(ctx context.Context) error {
			_, err := t.client.Encrypt(ctx, key.id, key.plaintext, benchContext)
			return err
		}
	case opDecrypt:
		return func(ctx context.Context) error {
			res, err := t.client.Decrypt(ctx, key.blob, benchContext)
			if err != nil {
				return err
			}
			defer clear(res.Plaintext)
			if subtle.ConstantTimeCompare(res.Plaintext, key.plaintext) != 1 {
				return errWrongPlaintext
			}
			return nil
		}
	case opGenerateDataKey:
		return func(ctx context.Context) error {
			dk, err := t.client.GenerateDataKey(ctx, key.id, benchContext)
			if err != nil {
				return err
			}
			clear(dk.Plaintext)
			return nil
		}
	}
	panic("kmsload: unknown operation " + op) // parseOps admits only the above
}

// cell is one (operation, protection, concurrency) measurement.
type cell struct {
	op          string
	protection  string // "" for the baselines
	concurrency int
	key         *benchKey
}

// plan lists the cells in run order: per concurrency, the baselines, then
// every crypto operation for every key.
func plan(opts options, keys []benchKey) []cell {
	var cells []cell
	for _, c := range opts.Concurrency {
		for _, op := range opts.Ops {
			switch op {
			case opHealthz, opGin:
				cells = append(cells, cell{op: op, concurrency: c})
			case opDescribeKey:
				if len(keys) > 0 {
					cells = append(cells, cell{op: op, concurrency: c, key: &keys[0]})
				}
			default:
				for i := range keys {
					cells = append(cells, cell{op: op, protection: keys[i].protection, concurrency: c, key: &keys[i]})
				}
			}
		}
	}
	return cells
}

// hostInfo describes the load generator's machine for the report.
func hostInfo() (numCPU, maxProcs int, goVersion string) {
	return runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version()
}
