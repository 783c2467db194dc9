// Command envelope shows envelope encryption with kmsd: one GenerateDataKey
// call gives a fresh AES-256 data key in plaintext and encrypted under a
// master key; the data is encrypted locally with AES-GCM, and only the
// encrypted data key is stored next to it. To read the data back, kmsd
// decrypts the data key, and the data is decrypted locally again.
//
// The master key behind alias/examples-envelope is created on the first run
// and reused afterwards.
//
// Run it against a local kmsd (make run):
//
//	go run ./examples/envelope --credentials .kmsgo-data/admin-credentials.json --text 'hello'
//	go run ./examples/envelope --credentials .kmsgo-data/admin-credentials.json --in go.mod --out /tmp/go.mod.env
//
// or with the connection in the environment (KMS_ENDPOINT, KMS_ACCESS_KEY_ID,
// KMS_SECRET_ACCESS_KEY, optional KMS_REGION).
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "envelope:", err)
		os.Exit(1)
	}
}

// Envelope is what gets stored: the encrypted data key and the locally
// encrypted data. Neither the plaintext nor the plaintext data key is in it.
type Envelope struct {
	KeyID            string            `json:"key_id"`             // master key that wrapped the data key (informational)
	EncryptedDataKey []byte            `json:"encrypted_data_key"` // dk.CiphertextBlob, decrypted by kmsd on read
	Context          map[string]string `json:"context"`            // encryption context: must be repeated exactly on decrypt
	Nonce            []byte            `json:"nonce"`              // 96-bit random AES-GCM nonce
	Ciphertext       []byte            `json:"ciphertext"`         // AES-256-GCM(data key, nonce, plaintext) || tag
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("envelope", flag.ContinueOnError)
	credFile := fs.String("credentials", "", "kmsd credentials JSON (e.g. .kmsgo-data/admin-credentials.json); default: KMS_* environment")
	endpoint := fs.String("endpoint", "", "kmsd URL (default KMS_ENDPOINT or http://127.0.0.1:8400)")
	alias := fs.String("key", "alias/examples-envelope", "master key alias (created when missing)")
	text := fs.String("text", "hello, envelope encryption", "the data to protect (ignored with --in)")
	in := fs.String("in", "", "encrypt this file instead of --text")
	out := fs.String("out", "", "where to write the envelope (default: a temporary file, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	client, err := newClient(*credFile, *endpoint)
	if err != nil {
		return err
	}

	// 1. The master key: reuse it via its alias, create it on the first run.
	keyID, created, err := ensureKey(ctx, client, *alias)
	if err != nil {
		return err
	}
	switch {
	case keyID == "":
		fmt.Fprintf(stdout, "master key %s (these credentials may not look it up: using it as is)\n", *alias)
	case created:
		fmt.Fprintf(stdout, "master key %s -> %s (created)\n", *alias, keyID)
	default:
		fmt.Fprintf(stdout, "master key %s -> %s (reused)\n", *alias, keyID)
	}

	data := []byte(*text)
	if *in != "" {
		if data, err = os.ReadFile(*in); err != nil {
			return err
		}
	}

	// 2. A data key. The encryption context is authenticated, not secret:
	// it is logged in the audit trail and must match exactly on decrypt.
	name := "text"
	if *in != "" {
		name = filepath.Base(*in)
	}
	encCtx := map[string]string{"purpose": "examples/envelope", "name": name}
	dk, err := client.GenerateDataKey(ctx, *alias, encCtx)
	if err != nil {
		return fmt.Errorf("generate data key: %w", err)
	}

	// 3. Encrypt locally, then forget the plaintext data key.
	nonce, ct, err := seal(dk.Plaintext, data)
	clear(dk.Plaintext)
	if err != nil {
		return err
	}
	env := Envelope{KeyID: dk.KeyID, EncryptedDataKey: dk.CiphertextBlob, Context: encCtx, Nonce: nonce, Ciphertext: ct}
	fmt.Fprintf(stdout, "data key: 32 bytes, used once in memory and cleared; stored encrypted (%d bytes, key version %d)\n",
		len(dk.CiphertextBlob), dk.KeyVersion)

	// 4. Store only the envelope (0600: it is not secret, but there is no
	// reason to share it either).
	path := *out
	if path == "" {
		dir, err := os.MkdirTemp("", "envelope-example")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "data.env.json")
	}
	stored, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, stored, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes of data encrypted into a %d-byte envelope\n", path, len(data), len(stored))

	// 5. Later, possibly in another process: read the envelope, ask kmsd
	// to decrypt the data key, decrypt the data locally.
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var back Envelope
	if err := json.Unmarshal(raw, &back); err != nil {
		return fmt.Errorf("read envelope: %w", err)
	}
	plain, err := open(ctx, client, back)
	if err != nil {
		return err
	}
	if *in != "" {
		sum := sha256.Sum256(plain)
		fmt.Fprintf(stdout, "decrypted %d bytes, sha256 %x\n", len(plain), sum[:8])
	} else {
		fmt.Fprintf(stdout, "decrypted: %s\n", plain)
	}

	// A changed encryption context is refused by kmsd with one opaque error.
	back.Context = map[string]string{"purpose": "examples/envelope", "name": "something-else"}
	if _, err := open(ctx, client, back); errors.Is(err, kmsclient.ErrInvalidCiphertext) {
		fmt.Fprintln(stdout, "with a different encryption context: refused (InvalidCiphertext)")
	} else {
		return fmt.Errorf("decrypt with a wrong context: want InvalidCiphertext, got %v", err)
	}
	return nil
}

// open decrypts an envelope: kmsd unwraps the data key, AES-GCM runs here.
func open(ctx context.Context, client *kmsclient.Client, env Envelope) ([]byte, error) {
	dk, err := client.Decrypt(ctx, env.EncryptedDataKey, env.Context)
	if err != nil {
		return nil, fmt.Errorf("decrypt data key: %w", err)
	}
	defer clear(dk.Plaintext)
	gcm, err := newGCM(dk.Plaintext)
	if err != nil {
		return nil, err
	}
	if len(env.Nonce) != gcm.NonceSize() {
		return nil, errors.New("envelope: bad nonce")
	}
	plain, err := gcm.Open(nil, env.Nonce, env.Ciphertext, nil)
	if err != nil {
		return nil, errors.New("envelope: data does not decrypt") // one opaque error
	}
	return plain, nil
}

// seal encrypts data with AES-256-GCM under key and a fresh random nonce.
func seal(key, data []byte) (nonce, ciphertext []byte, err error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, nil, err
	}
	nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, gcm.Seal(nil, nonce, data, nil), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ensureKey returns the key behind alias, creating key and alias when the
// alias does not exist yet.
func ensureKey(ctx context.Context, c *kmsclient.Client, alias string) (keyID string, created bool, err error) {
	a, err := c.GetAlias(ctx, alias)
	if err == nil {
		return a.KeyID, false, nil
	}
	if errors.Is(err, kmsclient.ErrAccessDenied) {
		// An application's access key usually may not look up aliases
		// (kms:ListAliases) or create keys: it uses the key its admin
		// created for it, by alias.
		return "", false, nil
	}
	if !errors.Is(err, kmsclient.ErrNotFound) {
		return "", false, fmt.Errorf("look up %s: %w", alias, err)
	}
	md, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "kmsgo examples", Alias: alias})
	if errors.Is(err, kmsclient.ErrAlreadyExists) { // another run created it meanwhile
		if a, err = c.GetAlias(ctx, alias); err == nil {
			return a.KeyID, false, nil
		}
	}
	if err != nil {
		return "", false, fmt.Errorf("create key %s: %w", alias, err)
	}
	return md.KeyID, true, nil
}

// newClient builds a kmsd client from a credentials file (the JSON kmsd
// writes to <data-dir>/admin-credentials.json) or from the environment
// (KMS_ENDPOINT, KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY, KMS_REGION),
// both through kmsclient's one loader. Secrets never come from flags, so
// they stay out of shell history.
func newClient(credFile, endpoint string) (*kmsclient.Client, error) {
	var p kmsclient.Profile
	if credFile != "" {
		var err error
		if p, err = kmsclient.LoadCredentialsFile(credFile); err != nil {
			return nil, err
		}
		if p.Endpoint == "" {
			p.Endpoint = os.Getenv(kmsclient.EnvEndpoint)
		}
	} else {
		p.Overlay(nil)
	}
	if endpoint != "" {
		p.Endpoint = endpoint
	}
	if p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return nil, errors.New("no credentials: pass --credentials .kmsgo-data/admin-credentials.json or set KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY")
	}
	return kmsclient.New(p.Config())
}
