package devhsm_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/hsm/hsmtest"
)

func openT(t *testing.T, dir string) *devhsm.Backend {
	t.Helper()
	b, err := devhsm.Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	hsmtest.Run(t, func(t *testing.T) hsm.Backend { return openT(t, t.TempDir()) })
}

func TestOpenCreatesLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "store")
	b := openT(t, dir)
	if err := b.GenerateKey(context.Background(), "k1", 256); err != nil {
		t.Fatal(err)
	}
	wantMode := map[string]fs.FileMode{
		"root.key": 0o600,
		"keys":     0o700 | fs.ModeDir,
	}
	for name, want := range wantMode {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
			t.Errorf("%s mode = %v, want %v", name, got, want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "root.key"))
	if err != nil || fi.Size() != 32 {
		t.Fatalf("root.key: %v, size %d", err, fi.Size())
	}
	entries, err := os.ReadDir(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("keys/ holds %d entries, want 1 (no temp files left)", len(entries))
	}
	info, err := entries[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", info.Mode().Perm())
	}
}

// TestPersistence reopens a store and checks that keys, ids with awkward
// characters and destroyed keys survive (or do not) as they should.
func TestPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ids := []string{"cmk/1/v1", "../../etc/passwd", "with space", "ünïcode", strings.Repeat("x", devhsm.MaxIDLen)}
	b, err := devhsm.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[string]hsm.Sealed{}
	for _, id := range ids {
		if err := b.GenerateKey(ctx, id, 256); err != nil {
			t.Fatalf("GenerateKey(%q): %v", id, err)
		}
		blob, err := b.Encrypt(ctx, id, []byte("persist "+id), []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		blobs[id] = blob
	}
	wrapped, err := b.WrapKey(ctx, []byte("0123456789abcdef"), []byte("w"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DestroyKey(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.GenerateKey(ctx, strings.Repeat("x", devhsm.MaxIDLen+1), 256); !errors.Is(err, hsm.ErrInvalidArgument) {
		t.Errorf("GenerateKey with a too long id: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing may escape the keys directory.
	if _, err := os.Stat(filepath.Join(dir, "..", "..", "etc", "passwd.key")); err == nil {
		t.Fatal("an id escaped the keys directory")
	}

	b2 := openT(t, dir)
	got, err := b2.ListKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(ids[1:]), hsm.RootKeyID)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ListKeys after reopen = %q, want %q", got, want)
	}
	for _, id := range ids[1:] {
		pt, err := b2.Decrypt(ctx, id, blobs[id], []byte(id))
		if err != nil || string(pt) != "persist "+id {
			t.Errorf("Decrypt(%q) after reopen = %q, %v", id, pt, err)
		}
	}
	if _, err := b2.Decrypt(ctx, ids[0], blobs[ids[0]], []byte(ids[0])); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Errorf("destroyed key after reopen: %v", err)
	}
	m, err := b2.UnwrapKey(ctx, wrapped, []byte("w"))
	if err != nil || string(m) != "0123456789abcdef" {
		t.Errorf("UnwrapKey after reopen = %q, %v", m, err)
	}
}

// TestNoPlaintextKeyOnDisk imports known material and checks that it appears
// nowhere in the store's files.
func TestNoPlaintextKeyOnDisk(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir)
	material := bytes.Repeat([]byte{0xA5, 0x5A, 0x3C, 0xC3}, 8)
	if err := b.ImportKey(context.Background(), "byok", material); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, material[:8]) {
			t.Errorf("%s contains the imported key material", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	// prepare returns a store holding key "k" and the path of its key file.
	prepare := func(t *testing.T) (dir, keyFile string) {
		dir = t.TempDir()
		b, err := devhsm.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.GenerateKey(ctx, "k", 128); err != nil {
			t.Fatal(err)
		}
		b.Close()
		m, err := filepath.Glob(filepath.Join(dir, "keys", "*.key"))
		if err != nil || len(m) != 1 {
			t.Fatalf("key files: %v %v", m, err)
		}
		return dir, m[0]
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir, keyFile string)
		want   error
	}{
		{"root.key 0644", func(t *testing.T, dir, _ string) { chmod(t, filepath.Join(dir, "root.key"), 0o644) }, devhsm.ErrInsecurePermissions},
		{"root.key 0640", func(t *testing.T, dir, _ string) { chmod(t, filepath.Join(dir, "root.key"), 0o640) }, devhsm.ErrInsecurePermissions},
		{"root.key 0604", func(t *testing.T, dir, _ string) { chmod(t, filepath.Join(dir, "root.key"), 0o604) }, devhsm.ErrInsecurePermissions},
		{"keys dir 0755", func(t *testing.T, dir, _ string) { chmod(t, filepath.Join(dir, "keys"), 0o755) }, devhsm.ErrInsecurePermissions},
		{"key file 0644", func(t *testing.T, _, kf string) { chmod(t, kf, 0o644) }, devhsm.ErrInsecurePermissions},
		{"root.key short", func(t *testing.T, dir, _ string) { writeFile(t, filepath.Join(dir, "root.key"), make([]byte, 31)) }, devhsm.ErrCorrupt},
		{"root.key long", func(t *testing.T, dir, _ string) { writeFile(t, filepath.Join(dir, "root.key"), make([]byte, 33)) }, devhsm.ErrCorrupt},
		{"root.key empty", func(t *testing.T, dir, _ string) { writeFile(t, filepath.Join(dir, "root.key"), nil) }, devhsm.ErrCorrupt},
		{"root.key replaced", func(t *testing.T, dir, _ string) {
			writeFile(t, filepath.Join(dir, "root.key"), bytes.Repeat([]byte{7}, 32))
		}, devhsm.ErrCorrupt},
		{"root.key is a directory", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, "root.key")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, devhsm.ErrCorrupt},
		{"key file flipped byte", func(t *testing.T, _, kf string) {
			data, err := os.ReadFile(kf)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 1
			writeFile(t, kf, data)
		}, devhsm.ErrCorrupt},
		{"key file truncated", func(t *testing.T, _, kf string) { writeFile(t, kf, []byte{hsm.SealedV1}) }, devhsm.ErrCorrupt},
		{"key file renamed to another id", func(t *testing.T, dir, kf string) {
			// base64url("j") = "ag": the file is bound to id "k" by its AAD.
			if err := os.Rename(kf, filepath.Join(dir, "keys", "ag.key")); err != nil {
				t.Fatal(err)
			}
		}, devhsm.ErrCorrupt},
		{"key file with undecodable name", func(t *testing.T, dir, kf string) {
			if err := os.Rename(kf, filepath.Join(dir, "keys", "not base64!.key")); err != nil {
				t.Fatal(err)
			}
		}, devhsm.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, kf := prepare(t)
			tc.damage(t, dir, kf)
			b, err := devhsm.Open(dir)
			if !errors.Is(err, tc.want) {
				if b != nil {
					b.Close()
				}
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if b != nil {
				t.Fatal("Open returned a backend with its error")
			}
		})
	}
}

func TestOpenIgnoresLeftovers(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir)
	if err := b.GenerateKey(context.Background(), "left", 256); err != nil {
		t.Fatal(err)
	}
	b.Close()
	stale := filepath.Join(dir, "keys", ".tmp-123")
	writeFile(t, stale, []byte("half-written"))
	writeFile(t, filepath.Join(dir, "keys", "README"), []byte("not a key"))
	b2 := openT(t, dir)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file not removed: %v", err)
	}
	ids, err := b2.ListKeys(context.Background(), "")
	if err != nil || !slices.Equal(ids, []string{hsm.RootKeyID, "left"}) {
		t.Errorf("ListKeys = %q, %v", ids, err)
	}
}

// TestRootKeyReservedAAD checks the root key's domain separation in the
// direction the interface does not enforce: Encrypt under the root key must
// not produce something UnwrapKey or a key file would accept.
func TestRootKeyReservedAAD(t *testing.T) {
	ctx := context.Background()
	b := openT(t, t.TempDir())
	for _, aad := range [][]byte{hsm.WrapAAD(nil), hsm.WrapAAD([]byte("cmk")), []byte("kmsgo/devhsm/keyfile/v1\x00k")} {
		if _, err := b.Encrypt(ctx, hsm.RootKeyID, []byte("material"), aad); !errors.Is(err, hsm.ErrInvalidArgument) {
			t.Errorf("Encrypt(root, aad=%q): %v, want ErrInvalidArgument", aad, err)
		}
	}
	wrapped, err := b.WrapKey(ctx, []byte("material"), []byte("cmk"))
	if err != nil {
		t.Fatal(err)
	}
	parts, err := hsm.ParseSealed(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(ctx, hsm.RootKeyID, parts, hsm.WrapAAD([]byte("cmk"))); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("Decrypt(root) with the wrap AAD opened wrapped material: %v", err)
	}
	// Ordinary AAD under the root key works.
	blob, err := b.Encrypt(ctx, hsm.RootKeyID, []byte("data"), []byte("kmsgo/other"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Decrypt(ctx, hsm.RootKeyID, blob, []byte("kmsgo/other")); err != nil || string(pt) != "data" {
		t.Errorf("root key round trip = %q, %v", pt, err)
	}
	if err := b.DestroyKey(ctx, hsm.RootKeyID); !errors.Is(err, hsm.ErrInvalidArgument) {
		t.Errorf("DestroyKey(root): %v", err)
	}
	if err := b.GenerateKey(ctx, hsm.RootKeyID, 256); !errors.Is(err, hsm.ErrKeyExists) {
		t.Errorf("GenerateKey(root): %v", err)
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	b := openT(t, t.TempDir())
	if err := b.GenerateKey(ctx, "k", 256); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"Encrypt MaxPlaintext", func() error {
			blob, err := b.Encrypt(ctx, "k", make([]byte, devhsm.MaxPlaintext), nil)
			if err == nil {
				err = blob.Check() // the largest parts Decrypt accepts
			}
			if err == nil {
				_, err = hsm.ParseSealed(blob.Encode()) // and framed, the largest blob
			}
			if err == nil {
				_, err = b.Decrypt(ctx, "k", blob, nil)
			}
			return err
		}, nil},
		{"WrapKey MaxPlaintext", func() error {
			w, err := b.WrapKey(ctx, make([]byte, devhsm.MaxPlaintext), nil)
			if err == nil {
				_, err = b.UnwrapKey(ctx, w, nil)
			}
			return err
		}, nil},
		{"Encrypt MaxPlaintext+1", func() error { _, err := b.Encrypt(ctx, "k", make([]byte, devhsm.MaxPlaintext+1), nil); return err }, hsm.ErrInvalidArgument},
		{"WrapKey empty", func() error { _, err := b.WrapKey(ctx, nil, nil); return err }, hsm.ErrInvalidArgument},
		{"WrapKey too long", func() error { _, err := b.WrapKey(ctx, make([]byte, devhsm.MaxPlaintext+1), nil); return err }, hsm.ErrInvalidArgument},
		{"Random 0", func() error {
			r, err := b.Random(ctx, 0)
			if err == nil && len(r) != 0 {
				return errors.New("non-empty")
			}
			return err
		}, nil},
		{"Random MaxRandom+1", func() error { _, err := b.Random(ctx, devhsm.MaxRandom+1); return err }, hsm.ErrInvalidArgument},
		{"Encrypt canceled ctx", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := b.Encrypt(c, "k", nil, nil)
			return err
		}, context.Canceled},
	}
	for _, tc := range tests {
		if err := tc.call(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if st := b.Stats(); st.Size != 0 || !st.Available {
		t.Errorf("Stats = %+v", st)
	}
}

func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkEncrypt32(b *testing.B) {
	ctx := context.Background()
	be, err := devhsm.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	if err := be.GenerateKey(ctx, "bench", 256); err != nil {
		b.Fatal(err)
	}
	pt, aad := make([]byte, 32), []byte("bench-aad")
	b.ReportAllocs()
	b.SetBytes(32)
	for b.Loop() {
		if _, err := be.Encrypt(ctx, "bench", pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt32(b *testing.B) {
	ctx := context.Background()
	be, err := devhsm.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	if err := be.GenerateKey(ctx, "bench", 256); err != nil {
		b.Fatal(err)
	}
	blob, err := be.Encrypt(ctx, "bench", make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(32)
	for b.Loop() {
		if _, err := be.Decrypt(ctx, "bench", blob, nil); err != nil {
			b.Fatal(err)
		}
	}
}
