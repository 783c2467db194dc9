package ciphertext_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// parseCounter counts the Parse calls whose input is one chosen blob, so
// that nothing else the server parses meanwhile disturbs the count.
type parseCounter struct {
	mu     sync.Mutex
	target []byte
	n      int
}

func (c *parseCounter) see(raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.target != nil && bytes.Equal(raw, c.target) {
		c.n++
	}
}

// parses runs f and returns how many times it parsed blob.
func (c *parseCounter) parses(blob []byte, f func()) int {
	c.mu.Lock()
	c.target, c.n = bytes.Clone(blob), 0
	c.mu.Unlock()
	f()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target = nil
	return c.n
}

// TestRequestParsesCiphertextOnce: a request that carries a ciphertext, on
// /v1 and on the AWS protocol, parses it exactly once: the transport parses
// it to find the key to authorize, hands the parsed value to the core, and
// the core hands its parts to AES-GCM or the HSM backend (whose Decrypt
// takes raw parts). Malformed, mismatched and tampered blobs are parsed
// once too, and stay the one opaque invalid-ciphertext error. A batch
// parses each item once.
func TestRequestParsesCiphertextOnce(t *testing.T) {
	srv := kmstest.Start(t)
	var pc parseCounter
	restore := ciphertext.SetParseHook(pc.see)
	t.Cleanup(restore)

	awsc := awskms.New(awskms.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Source: "kmstest"}, nil
		}),
		HTTPClient:       srv.HTTP.Client(),
		RetryMaxAttempts: 1,
	})
	ctx := context.Background()
	ec := map[string]string{"app": "parse-once"}

	createKey := func(alias, protection string) string {
		st, body := srv.Do(t, "POST", "/v1/keys", map[string]any{"alias": alias, "protection_level": protection})
		if st != http.StatusCreated {
			t.Fatalf("create %s key: %d %s", protection, st, body)
		}
		var md struct {
			KeyID string `json:"key_id"`
		}
		if err := json.Unmarshal(body, &md); err != nil || md.KeyID == "" {
			t.Fatalf("create: %s %v", body, err)
		}
		return md.KeyID
	}
	otherKey := createKey("alias/parse-once-other", "SOFTWARE")

	for _, protection := range []string{"SOFTWARE", "HSM"} {
		t.Run(protection, func(t *testing.T) {
			alias := "alias/parse-once-" + protection
			keyID := createKey(alias, protection)
			st, body := srv.Do(t, "POST", "/v1/encrypt", map[string]any{"key_id": keyID, "plaintext": []byte("secret"), "encryption_context": ec})
			if st != http.StatusOK {
				t.Fatalf("encrypt: %d %s", st, body)
			}
			var enc struct {
				CiphertextBlob []byte `json:"ciphertext_blob"`
			}
			if err := json.Unmarshal(body, &enc); err != nil {
				t.Fatal(err)
			}
			blob := enc.CiphertextBlob
			tampered := bytes.Clone(blob)
			tampered[len(tampered)-1] ^= 1
			unknownFormat := append([]byte{0x7f}, blob[1:]...)

			v1 := func(path string, req map[string]any, wantStatus int) func() {
				return func() {
					t.Helper()
					st, body := srv.Do(t, "POST", path, req)
					if st != wantStatus {
						t.Fatalf("%s: %d %s, want %d", path, st, body, wantStatus)
					}
				}
			}
			decryptReq := func(b []byte, extra ...string) map[string]any {
				m := map[string]any{"ciphertext_blob": b, "encryption_context": ec}
				if len(extra) == 2 {
					m[extra[0]] = extra[1]
				}
				return m
			}
			awsDecrypt := func(b []byte, keyID string, wantErr bool) func() {
				return func() {
					t.Helper()
					in := &awskms.DecryptInput{CiphertextBlob: b, EncryptionContext: ec}
					if keyID != "" {
						in.KeyId = aws.String(keyID)
					}
					out, err := awsc.Decrypt(ctx, in)
					if wantErr {
						var ice *types.InvalidCiphertextException
						var ike *types.IncorrectKeyException
						if !errors.As(err, &ice) && !errors.As(err, &ike) {
							t.Fatalf("AWS Decrypt: %v, want InvalidCiphertext or IncorrectKey", err)
						}
						return
					}
					if err != nil || string(out.Plaintext) != "secret" {
						t.Fatalf("AWS Decrypt: %v", err)
					}
				}
			}
			batch := map[string]any{"items": []map[string]any{decryptReq(blob), decryptReq(blob), decryptReq(blob, "key_id", alias)}}
			cases := []struct {
				name string
				blob []byte
				call func()
				want int
			}{
				{"v1 Decrypt", blob, v1("/v1/decrypt", decryptReq(blob), http.StatusOK), 1},
				{"v1 Decrypt by alias", blob, v1("/v1/decrypt", decryptReq(blob, "key_id", alias), http.StatusOK), 1},
				{"v1 Decrypt naming another key", blob, v1("/v1/decrypt", decryptReq(blob, "key_id", otherKey), http.StatusBadRequest), 1},
				{"v1 Decrypt tampered", tampered, v1("/v1/decrypt", decryptReq(tampered), http.StatusBadRequest), 1},
				{"v1 Decrypt unknown format", unknownFormat, v1("/v1/decrypt", decryptReq(unknownFormat), http.StatusBadRequest), 1},
				{"v1 DecryptBatch of 3", blob, v1("/v1/decrypt/batch", batch, http.StatusOK), 3},
				{"v1 ReEncrypt", blob, v1("/v1/re-encrypt", map[string]any{"ciphertext_blob": blob, "source_encryption_context": ec, "destination_key_id": otherKey}, http.StatusOK), 1},
				{"AWS Decrypt", blob, awsDecrypt(blob, "", false), 1},
				{"AWS Decrypt with KeyId", blob, awsDecrypt(blob, alias, false), 1},
				{"AWS Decrypt with another KeyId", blob, awsDecrypt(blob, otherKey, true), 1},
				{"AWS Decrypt tampered", tampered, awsDecrypt(tampered, "", true), 1},
				{"AWS ReEncrypt", blob, func() {
					out, err := awsc.ReEncrypt(ctx, &awskms.ReEncryptInput{
						CiphertextBlob: blob, SourceEncryptionContext: ec, SourceKeyId: aws.String(keyID), DestinationKeyId: aws.String(otherKey),
					})
					if err != nil || len(out.CiphertextBlob) == 0 {
						t.Fatalf("AWS ReEncrypt: %v", err)
					}
				}, 1},
				{"core Decrypt", blob, func() {
					out, err := kmsdinternal.Of(srv.App).KMS.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyID: alias})
					if err != nil || string(out.Plaintext) != "secret" {
						t.Fatalf("core Decrypt: %v", err)
					}
				}, 1},
			}
			for _, tc := range cases {
				if got := pc.parses(tc.blob, tc.call); got != tc.want {
					t.Errorf("%s parsed the ciphertext %d times, want %d", tc.name, got, tc.want)
				}
			}
		})
	}
}
