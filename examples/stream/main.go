// Command stream shows streaming envelope encryption of a file of any size
// with package envelope: one data key from kmsd, wrapped by two master
// keys (one per "region"; either can decrypt), and the data encrypted
// locally in 64 KiB AES-256-GCM chunks, in constant memory.
//
// It encrypts the input (a file, or --size MiB of generated data), prints
// the header without decrypting, decrypts it with the first key disabled
// by policy (ReaderOptions.KeyIDs: only the second key may unwrap), shows
// that a flipped byte and a truncated copy are refused, and rewraps the
// header after a rotation without touching the body.
//
// Run it against a local kmsd (make run), with the connection in the
// environment (KMS_ENDPOINT, KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY,
// optional KMS_REGION):
//
//	go run ./examples/stream --size 64
//	go run ./examples/stream --in big.iso
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
	"github.com/kmsgo/kmsgo/starter/kmsclient/envelope"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	in := fs.String("in", "", "file to encrypt (default: --size MiB of random data)")
	sizeMiB := fs.Int("size", 8, "MiB of random data to encrypt when --in is not given")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := kmsclient.New(kmsclient.Config{
		Endpoint:        os.Getenv("KMS_ENDPOINT"),
		AccessKeyID:     os.Getenv("KMS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("KMS_SECRET_ACCESS_KEY"),
		Region:          os.Getenv("KMS_REGION"),
	})
	if err != nil {
		return err
	}

	// Two master keys, as two regions would have. Created on the first run.
	var keys [2]string
	for i, alias := range []string{"alias/examples-stream-eu", "alias/examples-stream-us"} {
		if keys[i], err = ensureKey(ctx, client, alias); err != nil {
			return err
		}
	}
	codec := envelope.New(client)

	dir, err := os.MkdirTemp("", "stream-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	encPath := filepath.Join(dir, "data.kms")

	// 1. Encrypt: stream the input through the Writer into a 0600 file.
	var src io.Reader = io.LimitReader(rand.Reader, int64(*sizeMiB)<<20)
	name := fmt.Sprintf("random-%dMiB", *sizeMiB)
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		src, name = f, filepath.Base(*in)
	}
	encCtx := map[string]string{"purpose": "examples/stream", "name": name}
	sum := sha256.New()
	out, err := os.OpenFile(encPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w, err := codec.NewWriter(ctx, out, keys[0], envelope.WriterOptions{Context: encCtx, ExtraKeyIDs: []string{keys[1]}})
	if err != nil {
		out.Close()
		return err
	}
	n, err := io.Copy(w, io.TeeReader(src, sum))
	if err == nil {
		err = w.Close() // seals the last chunk
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	want := sum.Sum(nil)
	fmt.Fprintf(stdout, "encrypted %d bytes of %s\n", n, name)

	// 2. Inspect the header: no KMS call, nothing authenticated yet.
	f, err := os.Open(encPath)
	if err != nil {
		return err
	}
	h, err := envelope.ReadHeader(f)
	f.Close()
	if err != nil {
		return err
	}
	fi, _ := os.Stat(encPath)
	size, chunks, _ := h.BodySize(fi.Size())
	fmt.Fprintf(stdout, "header: format v%d, %d recipients, chunk size %d, %d-byte header; body holds %d bytes in %d chunks\n",
		h.Version, len(h.Recipients), h.ChunkSize, h.Size, size, chunks)

	// 3. Decrypt through the second recipient only.
	got, err := decrypt(ctx, codec, encPath, envelope.ReaderOptions{Context: encCtx, KeyIDs: []string{keys[1]}})
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("decrypted data differs")
	}
	fmt.Fprintln(stdout, "decrypted with the second recipient's key: sha256 matches")

	// 4. Tampering and truncation are refused.
	raw, err := os.ReadFile(encPath)
	if err != nil {
		return err
	}
	bad := filepath.Join(dir, "bad.kms")
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(bad, raw, 0o600); err != nil {
		return err
	}
	if _, err := decrypt(ctx, codec, bad, envelope.ReaderOptions{}); !errors.Is(err, envelope.ErrAuthentication) {
		return fmt.Errorf("flipped byte: want ErrAuthentication, got %v", err)
	}
	if err := os.WriteFile(bad, raw[:len(raw)/2], 0o600); err != nil {
		return err
	}
	if _, err := decrypt(ctx, codec, bad, envelope.ReaderOptions{}); !errors.Is(err, envelope.ErrAuthentication) {
		return fmt.Errorf("truncated: want ErrAuthentication, got %v", err)
	}
	fmt.Fprintln(stdout, "a flipped byte and a truncated copy: refused (ErrAuthentication)")

	// 5. After a rotation of the first key, rewrap: new wrapped keys
	// through ReEncrypt, body bytes unchanged.
	if _, err := client.RotateKey(ctx, keys[0]); err != nil {
		return err
	}
	re := filepath.Join(dir, "rewrapped.kms")
	if err := rewrap(ctx, codec, encPath, re); err != nil {
		return err
	}
	if got, err = decrypt(ctx, codec, re, envelope.ReaderOptions{Context: encCtx}); err != nil || !bytes.Equal(got, want) {
		return fmt.Errorf("rewrapped file: %v", err)
	}
	fmt.Fprintln(stdout, "rewrapped after a key rotation; the body was copied unchanged and still decrypts")
	return nil
}

// decrypt streams path through a Reader and returns the plaintext's SHA-256.
func decrypt(ctx context.Context, codec *envelope.Codec, path string, opts envelope.ReaderOptions) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := codec.NewReader(ctx, f, opts)
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, r); err != nil {
		return nil, err
	}
	return sum.Sum(nil), nil
}

func rewrap(ctx context.Context, codec *envelope.Codec, from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := codec.Rewrap(ctx, out, in, envelope.RewrapOptions{}); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ensureKey returns the key behind alias, creating it on the first run.
func ensureKey(ctx context.Context, c *kmsclient.Client, alias string) (string, error) {
	a, err := c.GetAlias(ctx, alias)
	if err == nil {
		return a.KeyID, nil
	}
	if !errors.Is(err, kmsclient.ErrNotFound) {
		return "", fmt.Errorf("look up %s: %w", alias, err)
	}
	md, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "kmsgo examples", Alias: alias})
	if err != nil {
		return "", fmt.Errorf("create key %s: %w", alias, err)
	}
	return md.KeyID, nil
}
