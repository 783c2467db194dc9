package ciphertext_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// The client-side header parser agrees with the server's blob format, on
// real blobs from kmsd across a rotation.
func TestParseCiphertextHeaderRealBlobs(t *testing.T) {
	srv := kmstest.Start(t)
	c, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	for version := 1; version <= 2; version++ {
		out, err := c.Encrypt(ctx, md.KeyID, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := kmsclient.ParseCiphertextHeader(out.CiphertextBlob)
		if err != nil {
			t.Fatal(err)
		}
		if h.KeyID != md.KeyID || h.KeyVersion != version || h.KeyVersion != out.KeyVersion {
			t.Fatalf("header %+v, want %s v%d", h, md.KeyID, version)
		}
		if _, err := c.RotateKey(ctx, md.KeyID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseCiphertextHeaderRejects(t *testing.T) {
	good := ciphertextBlob(t, "abc-1", 3)
	tests := []struct {
		name string
		blob []byte
	}{
		{"empty", nil},
		{"unknown format", append([]byte{2}, good[1:]...)},
		{"zero id length", append([]byte{1, 0}, good[2:]...)},
		{"truncated", good[:len(good)-1-16]},
		{"bad id char", func() []byte { b := append([]byte(nil), good...); b[2] = 'A'; return b }()},
		{"version 0", func() []byte { b := append([]byte(nil), good...); binary.BigEndian.PutUint32(b[7:], 0); return b }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := kmsclient.ParseCiphertextHeader(tc.blob); !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if h, err := kmsclient.ParseCiphertextHeader(good); err != nil || h.KeyID != "abc-1" || h.KeyVersion != 3 {
		t.Fatalf("%+v %v", h, err)
	}
}

func ciphertextBlob(t testing.TB, id string, version uint32) []byte {
	b, err := ciphertext.Blob{KeyID: id, KeyVersion: version, IV: make([]byte, 12), Sealed: make([]byte, 20)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseCiphertextHeader: the client parser never panics and accepts
// every blob the server's parser accepts, with the same key id and version.
func FuzzParseCiphertextHeader(f *testing.F) {
	f.Add(ciphertextBlob(f, "abc-1", 3))
	f.Add([]byte{1, 1, 'a', 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, blob []byte) {
		h, err := kmsclient.ParseCiphertextHeader(blob)
		if err != nil && !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
			t.Fatalf("error %v", err)
		}
		b, serr := ciphertext.Parse(blob)
		if serr == nil {
			if err != nil || h.KeyID != b.KeyID || h.KeyVersion != int(b.KeyVersion) {
				t.Fatalf("client %+v %v, server %s v%d", h, err, b.KeyID, b.KeyVersion)
			}
		}
	})
}
