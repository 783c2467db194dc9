package p11_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

var bg = context.Background()

func open(t testing.TB, cfg p11.Config) *p11.Backend {
	t.Helper()
	b, err := p11.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func generate(t testing.TB, b *p11.Backend, id string, bits int) {
	t.Helper()
	if err := b.GenerateKey(bg, id, bits); err != nil {
		t.Fatalf("GenerateKey(%q): %v", id, err)
	}
}

// rawSession opens a session of the test's own on the backend's token.
func rawSession(t testing.TB, b *p11.Backend) (*pkcs11.Ctx, pkcs11.SessionHandle) {
	t.Helper()
	p, slot := p11.Raw(b)
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatalf("OpenSession: %v", err)
	}
	t.Cleanup(func() { _ = p.CloseSession(s) })
	return p, s
}

func rawFind(t testing.TB, p *pkcs11.Ctx, s pkcs11.SessionHandle, id string) pkcs11.ObjectHandle {
	t.Helper()
	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id))}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := p.FindObjects(s, 10)
	_ = p.FindObjectsFinal(s)
	if err != nil || len(objs) != 1 {
		t.Fatalf("find %q: %d objects, %v", id, len(objs), err)
	}
	return objs[0]
}

func TestKeyAttributes(t *testing.T) {
	t.Parallel()
	b := open(t, softhsmtest.New(t))
	generate(t, b, "gen-128", 128)
	generate(t, b, "gen-256", 256)
	if err := b.ImportKey(bg, "imported", bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	p, s := rawSession(t, b)
	_, slot := p11.Raw(b)
	tests := []struct {
		id        string
		valueLen  int
		generated bool // CKA_ALWAYS_SENSITIVE/NEVER_EXTRACTABLE only hold for generated keys
	}{
		{"gen-128", 16, true},
		{"gen-256", 32, true},
		{hsm.RootKeyID, 32, true},
		{"imported", 32, false},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			h := rawFind(t, p, s, tc.id)
			want := map[uint]bool{
				pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true,
				pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_ENCRYPT: true, pkcs11.CKA_DECRYPT: true,
				pkcs11.CKA_WRAP: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_SIGN: false, pkcs11.CKA_DERIVE: false,
			}
			if tc.generated {
				want[pkcs11.CKA_ALWAYS_SENSITIVE] = true
				want[pkcs11.CKA_NEVER_EXTRACTABLE] = true
			}
			for typ, v := range want {
				attrs, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
				if err != nil || len(attrs) != 1 || len(attrs[0].Value) != 1 {
					t.Fatalf("attribute %#x: %v", typ, err)
				}
				if got := attrs[0].Value[0] != 0; got != v {
					t.Errorf("attribute %#x = %v, want %v", typ, got, v)
				}
			}
			attrs, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
			})
			if err != nil {
				t.Fatal(err)
			}
			if string(attrs[0].Value) != tc.id || string(attrs[1].Value) != tc.id {
				t.Errorf("CKA_LABEL/CKA_ID = %q/%q, want %q", attrs[0].Value, attrs[1].Value, tc.id)
			}
			if got := attrs[2].Value[0]; int(got) != tc.valueLen {
				t.Errorf("CKA_VALUE_LEN = %d, want %d", got, tc.valueLen)
			}
			if got := attrs[3].Value[0]; uint(got) != pkcs11.CKK_AES {
				t.Errorf("CKA_KEY_TYPE = %d, want CKK_AES", got)
			}
			v, err := p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			if err == nil {
				t.Fatalf("reading CKA_VALUE succeeded (%d bytes)", len(v[0].Value))
			}
			// Sensitivity cannot be switched off or extractability on.
			for _, a := range []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			} {
				rw, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.SetAttributeValue(rw, h, []*pkcs11.Attribute{a}); err == nil {
					t.Errorf("setting attribute %#x to %v succeeded", a.Type, a.Value)
				}
				_ = p.CloseSession(rw)
			}
		})
	}
}

func localGCM(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

func TestRoundTripInterop(t *testing.T) {
	t.Parallel()
	b := open(t, softhsmtest.New(t))
	key := bytes.Repeat([]byte{0x42}, 32)
	if err := b.ImportKey(bg, "k", key); err != nil {
		t.Fatal(err)
	}
	aead := localGCM(t, key)
	tests := []struct {
		name string
		pt   []byte
		aad  []byte
	}{
		{"empty", nil, nil},
		{"one byte", []byte{1}, []byte("a")},
		{"data key", bytes.Repeat([]byte{9}, 32), []byte("cmk=1/v=2")},
		{"max size", bytes.Repeat([]byte{3}, 64<<10), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb, err := b.Encrypt(bg, "k", tc.pt, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if err := sb.Check(); err != nil {
				t.Fatal(err)
			}
			got, err := aead.Open(nil, sb.IV, sb.Ciphertext, tc.aad)
			if err != nil || !bytes.Equal(got, tc.pt) {
				t.Fatalf("crypto/cipher cannot open the HSM blob: %v", err)
			}
			got, err = b.Decrypt(bg, "k", sb, tc.aad)
			if err != nil || !bytes.Equal(got, tc.pt) {
				t.Fatalf("Decrypt: %v", err)
			}
		})
	}
	_, err := b.Encrypt(bg, "k", make([]byte, 64<<10+1), nil)
	if !errors.Is(err, hsm.ErrInvalidArgument) {
		t.Errorf("Encrypt of 64 KiB + 1: %v, want ErrInvalidArgument", err)
	}
}

func TestTamperIsErrDecrypt(t *testing.T) {
	t.Parallel()
	b := open(t, softhsmtest.New(t))
	generate(t, b, "k", 256)
	generate(t, b, "other", 256)
	pt, aad := []byte("0123456789abcdef0123456789abcdef"), []byte("tenant=1")
	blob, err := b.Encrypt(bg, "k", pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	flipIV := func(i int) hsm.Sealed {
		c := bytes.Clone(blob.IV)
		c[i] ^= 0x01
		return hsm.Sealed{IV: c, Ciphertext: blob.Ciphertext}
	}
	flipCT := func(i int) hsm.Sealed {
		c := bytes.Clone(blob.Ciphertext)
		c[i] ^= 0x01
		return hsm.Sealed{IV: blob.IV, Ciphertext: c}
	}
	withIV := func(iv []byte) hsm.Sealed { return hsm.Sealed{IV: iv, Ciphertext: blob.Ciphertext} }
	withCT := func(ct []byte) hsm.Sealed { return hsm.Sealed{IV: blob.IV, Ciphertext: ct} }
	framed := blob.Encode()
	tests := []struct {
		name string
		id   string
		blob hsm.Sealed
		aad  []byte
	}{
		{"IV first byte", "k", flipIV(0), aad},
		{"IV last byte", "k", flipIV(hsm.IVSize - 1), aad},
		{"ciphertext", "k", flipCT(3), aad},
		{"tag", "k", flipCT(len(blob.Ciphertext) - 1), aad},
		{"AAD", "k", blob, []byte("tenant=2")},
		{"AAD dropped", "k", blob, nil},
		{"truncated", "k", withCT(blob.Ciphertext[:len(blob.Ciphertext)-1]), aad},
		{"shorter than a tag", "k", withCT(blob.Ciphertext[:hsm.TagSize-1]), aad},
		{"no ciphertext", "k", withCT(nil), aad},
		{"11-byte IV", "k", withIV(blob.IV[:hsm.IVSize-1]), aad},
		{"13-byte IV", "k", withIV(append(bytes.Clone(blob.IV), 0)), aad},
		{"16-byte IV", "k", withIV(append(bytes.Clone(blob.IV), 0, 0, 0, 0)), aad},
		{"no IV", "k", withIV(nil), aad},
		{"framed blob as parts", "k", hsm.Sealed{IV: framed[:hsm.IVSize], Ciphertext: framed[hsm.IVSize:]}, aad},
		{"empty", "k", hsm.Sealed{}, aad},
		{"wrong key", "other", blob, aad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.Decrypt(bg, tc.id, tc.blob, tc.aad)
			if err != hsm.ErrDecrypt { //nolint:errorlint // must be the one opaque error itself
				t.Errorf("Decrypt = %x, %v; want exactly hsm.ErrDecrypt", got, err)
			}
			if got != nil {
				t.Errorf("data returned with the error")
			}
		})
	}
	if got, err := b.Decrypt(bg, "k", blob, aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("the untouched blob no longer opens: %v", err)
	}
	// A failed decrypt discards its session; the pool keeps working.
	if st := b.Stats(); st.InUse != 0 || !st.Available {
		t.Errorf("Stats after failed decrypts = %+v", st)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	b := open(t, softhsmtest.New(t))
	generate(t, b, "k", 256)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"generate taken id", func() error { return b.GenerateKey(bg, "k", 128) }, hsm.ErrKeyExists},
		{"import taken id", func() error { return b.ImportKey(bg, "k", make([]byte, 16)) }, hsm.ErrKeyExists},
		{"generate 192 bits", func() error { return b.GenerateKey(bg, "x", 192) }, hsm.ErrInvalidArgument},
		{"generate empty id", func() error { return b.GenerateKey(bg, "", 256) }, hsm.ErrInvalidArgument},
		{"generate NUL in id", func() error { return b.GenerateKey(bg, "a\x00b", 256) }, hsm.ErrInvalidArgument},
		{"generate long id", func() error { return b.GenerateKey(bg, string(make([]byte, 256)), 256) }, hsm.ErrInvalidArgument},
		{"import 24 bytes", func() error { return b.ImportKey(bg, "x", make([]byte, 24)) }, hsm.ErrInvalidArgument},
		{"encrypt empty id", func() error { _, err := b.Encrypt(bg, "", []byte("x"), nil); return err }, hsm.ErrInvalidArgument},
		{"decrypt empty id", func() error {
			_, err := b.Decrypt(bg, "", hsm.Sealed{IV: make([]byte, hsm.IVSize), Ciphertext: make([]byte, 28)}, nil)
			return err
		}, hsm.ErrInvalidArgument},
		{"decrypt missing key", func() error {
			_, err := b.Decrypt(bg, "missing", hsm.Sealed{IV: make([]byte, hsm.IVSize), Ciphertext: make([]byte, 28)}, nil)
			return err
		}, hsm.ErrKeyNotFound},
		{"encrypt missing key", func() error { _, err := b.Encrypt(bg, "missing", []byte("x"), nil); return err }, hsm.ErrKeyNotFound},
		{"destroy missing key", func() error { return b.DestroyKey(bg, "missing") }, hsm.ErrKeyNotFound},
		{"destroy root key", func() error { return b.DestroyKey(bg, hsm.RootKeyID) }, hsm.ErrInvalidArgument},
		{"wrap empty", func() error { _, err := b.WrapKey(bg, nil, nil); return err }, hsm.ErrInvalidArgument},
		{"random negative", func() error { _, err := b.Random(bg, -1); return err }, hsm.ErrInvalidArgument},
		{"random too large", func() error { _, err := b.Random(bg, 1<<20); return err }, hsm.ErrInvalidArgument},
		{"cancelled context", func() error {
			ctx, cancel := context.WithCancel(bg)
			cancel()
			_, err := b.Encrypt(ctx, "k", []byte("x"), nil)
			return err
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Rejected calls left nothing behind.
	ids, err := b.ListKeys(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"k", hsm.RootKeyID}; !slices.Equal(ids, want) {
		t.Errorf("ListKeys = %q, want %q", ids, want)
	}
}

func TestListAndDestroy(t *testing.T) {
	t.Parallel()
	b := open(t, softhsmtest.New(t))
	for _, id := range []string{"a/2", "a/1", "b/1", "a"} {
		generate(t, b, id, 128)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"a/", []string{"a/1", "a/2"}},
		{"a", []string{"a", "a/1", "a/2"}},
		{"b", []string{"b/1"}},
		{"", []string{"a", "a/1", "a/2", "b/1", hsm.RootKeyID}},
		{"z", nil},
	}
	for _, tc := range tests {
		got, err := b.ListKeys(bg, tc.prefix)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ListKeys(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
	if _, err := b.Encrypt(bg, "a/1", []byte("x"), nil); err != nil { // caches the handle
		t.Fatal(err)
	}
	if err := b.DestroyKey(bg, "a/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Encrypt(bg, "a/1", []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Errorf("Encrypt after DestroyKey: %v", err)
	}
	if got, _ := b.ListKeys(bg, "a/"); !slices.Equal(got, []string{"a/2"}) {
		t.Errorf("ListKeys after destroy = %q", got)
	}
}

// TestStaleHandleFromOtherBackend: another Backend (think: another kmsd
// replica) destroys and re-creates a key whose handle this Backend cached.
func TestStaleHandleFromOtherBackend(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.New(t)
	b1, b2 := open(t, cfg), open(t, cfg)
	generate(t, b1, "k", 256)
	old, err := b1.Encrypt(bg, "k", []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.DestroyKey(bg, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.Encrypt(bg, "k", []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("Encrypt with a stale cached handle: %v, want ErrKeyNotFound", err)
	}
	generate(t, b2, "k", 256)
	blob, err := b1.Encrypt(bg, "k", []byte("new"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Decrypt(bg, "k", blob, nil); err != nil || string(got) != "new" {
		t.Fatalf("b2 cannot decrypt b1's blob under the re-created key: %v", err)
	}
	if _, err := b1.Decrypt(bg, "k", old, nil); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("old blob under the re-created key: %v, want ErrDecrypt", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.New(t)
	b := open(t, cfg)
	material := bytes.Repeat([]byte{0xA5}, 32)
	aad := []byte("cmk=7/v=1")
	wrapped, err := b.WrapKey(bg, material, aad)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.UnwrapKey(bg, wrapped, aad)
	if err != nil || !bytes.Equal(got, material) {
		t.Fatalf("UnwrapKey = %x, %v", got, err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"wrong aad", func() error { _, err := b.UnwrapKey(bg, wrapped, []byte("cmk=7/v=2")); return err }},
		{"decrypt under root with raw aad", func() error {
			parts, err := hsm.ParseSealed(wrapped)
			if err != nil {
				return err
			}
			_, err = b.Decrypt(bg, hsm.RootKeyID, parts, aad)
			return err
		}},
		{"unwrap of root-key data", func() error {
			blob, err := b.Encrypt(bg, hsm.RootKeyID, material, aad)
			if err != nil {
				return err
			}
			_, err = b.UnwrapKey(bg, blob.Encode(), aad)
			return err
		}},
	}
	for _, tc := range tests {
		if err := tc.call(); err != hsm.ErrDecrypt { //nolint:errorlint
			t.Errorf("%s: %v, want hsm.ErrDecrypt", tc.name, err)
		}
	}
	// A second backend on the same token (same root key) unwraps it.
	cfg.CreateRootKey = false
	if got, err := open(t, cfg).UnwrapKey(bg, wrapped, aad); err != nil || !bytes.Equal(got, material) {
		t.Fatalf("second backend UnwrapKey: %v", err)
	}
}

func TestRandom(t *testing.T) {
	t.Parallel()
	b := open(t, softhsmtest.New(t))
	seen := map[string]bool{}
	for _, n := range []int{0, 1, 12, 32, 4096} {
		r, err := b.Random(bg, n)
		if err != nil || len(r) != n {
			t.Fatalf("Random(%d) = %d bytes, %v", n, len(r), err)
		}
		if n >= 12 {
			if seen[string(r)] {
				t.Fatalf("Random(%d) repeated", n)
			}
			seen[string(r)] = true
		}
	}
}

// TestConcurrency runs 4x more goroutines than sessions; -race checks the
// pool, and the token's session count shows the pool bound holds.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.New(t)
	cfg.PoolSize = 2
	cfg.AcquireTimeout = 30 * time.Second
	b := open(t, cfg)
	generate(t, b, "k", 256)
	p, slot := p11.Raw(b)
	var maxSessions atomic.Int64
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() { // samples the token's open session count
		defer watcher.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if ti, err := p.GetTokenInfo(slot); err == nil && int64(ti.SessionCount) > maxSessions.Load() {
				maxSessions.Store(int64(ti.SessionCount))
			}
		}
	}()
	const workers, iterations = 8, 150
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			aad := []byte(fmt.Sprintf("w%d", w))
			for i := range iterations {
				pt := []byte(fmt.Sprintf("msg %d", i))
				blob, err := b.Encrypt(bg, "k", pt, aad)
				if err != nil {
					errs <- err
					return
				}
				got, err := b.Decrypt(bg, "k", blob, aad)
				if err != nil || !bytes.Equal(got, pt) {
					errs <- fmt.Errorf("decrypt: %q %v", got, err)
					return
				}
				if i%10 == 0 {
					if _, err := b.Decrypt(bg, "k", blob, nil); !errors.Is(err, hsm.ErrDecrypt) {
						errs <- fmt.Errorf("bad aad: %v", err)
						return
					}
					if _, err := b.Random(bg, 16); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	watcher.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := b.Stats()
	if st.Size != 2 || st.InUse != 0 || st.Waits == 0 || st.Timeouts != 0 || !st.Available {
		t.Errorf("Stats = %+v; want Size 2, InUse 0, some Waits, no Timeouts", st)
	}
	// Pool (2) + anchor (1); nothing else uses this token.
	if m := maxSessions.Load(); m > 3 {
		t.Errorf("token had %d sessions open, want at most 3", m)
	}
}

func TestPoolExhaustionIsErrBusy(t *testing.T) {
	t.Parallel()
	cfg := softhsmtest.New(t)
	cfg.PoolSize = 1
	cfg.AcquireTimeout = 150 * time.Millisecond
	b := open(t, cfg)
	generate(t, b, "k", 256)
	release, err := p11.HoldSession(b)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.Encrypt(bg, "k", []byte("x"), nil)
	waited := time.Since(start)
	if !errors.Is(err, hsm.ErrBusy) || !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatalf("Encrypt with the pool exhausted: %v, want ErrBusy (matching ErrUnavailable)", err)
	}
	if waited < cfg.AcquireTimeout {
		t.Errorf("gave up after %v, before AcquireTimeout %v", waited, cfg.AcquireTimeout)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	if _, err := b.Random(ctx, 8); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Random with a short deadline: %v, want DeadlineExceeded", err)
	}
	if st := b.Stats(); st.InUse != 1 || st.Timeouts != 1 || st.Waits != 2 {
		t.Errorf("Stats while held = %+v; want InUse 1, Timeouts 1, Waits 2", st)
	}
	release()
	if _, err := b.Encrypt(bg, "k", []byte("x"), nil); err != nil {
		t.Fatalf("Encrypt after release: %v", err)
	}
	if st := b.Stats(); st.InUse != 0 {
		t.Errorf("InUse = %d after all calls returned", st.InUse)
	}

	// A waiter gets the session when it is released (long timeout here, so
	// a loaded machine cannot turn this into ErrBusy).
	cfg.AcquireTimeout = time.Minute
	b2 := open(t, cfg)
	release, err = p11.HoldSession(b2)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := b2.Encrypt(bg, "k", []byte("x"), nil); done <- err }()
	waitFor(t, "the waiter to queue", 10*time.Second, func() bool { return b2.Stats().Waits == 1 })
	release()
	if err := <-done; err != nil {
		t.Fatalf("queued Encrypt: %v", err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	b, err := p11.Open(softhsmtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	generate(t, b, "k", 256)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Encrypt(bg, "k", []byte("x"), nil); !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("Encrypt after Close: %v", err)
	}
	if err := b.Health(bg); !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("Health after Close: %v", err)
	}
	if b.Stats().Available {
		t.Error("Available after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	good := softhsmtest.New(t)
	fresh := softhsmtest.New(t) // has no root key yet
	module := good.ModulePath
	tests := []struct {
		name string
		cfg  p11.Config
		want error
	}{
		{"no PIN", p11.Config{ModulePath: module, TokenLabel: good.TokenLabel}, p11.ErrNoPIN},
		{"no label", p11.Config{ModulePath: module, PIN: "1"}, p11.ErrConfig},
		{"negative pool", p11.Config{ModulePath: module, TokenLabel: good.TokenLabel, PIN: good.PIN, PoolSize: -1}, p11.ErrConfig},
		{"bad module", p11.Config{ModulePath: "/nonexistent/libnothing.so", TokenLabel: "x", PIN: "1"}, p11.ErrModule},
		{"unknown token", p11.Config{ModulePath: module, TokenLabel: "no-such-token", PIN: "1"}, p11.ErrTokenNotFound},
		{"root key missing", p11.Config{ModulePath: module, TokenLabel: fresh.TokenLabel, PIN: fresh.PIN}, p11.ErrRootKeyMissing},
		{"wrong PIN", p11.Config{ModulePath: module, TokenLabel: fresh.TokenLabel, PIN: "wrong-pin", CreateRootKey: true}, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := p11.Open(tc.cfg)
			if err == nil {
				b.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Open: %v, want %v", err, tc.want)
			}
			if len(tc.cfg.PIN) > 3 && err != nil && strings.Contains(err.Error(), tc.cfg.PIN) {
				t.Errorf("Open error %q contains the PIN", err)
			}
		})
	}
	// The failed opens did not create a root key; CreateRootKey does, once.
	b := open(t, fresh)
	if ids, err := b.ListKeys(bg, ""); err != nil || !slices.Equal(ids, []string{hsm.RootKeyID}) {
		t.Errorf("keys after first Open = %q, %v", ids, err)
	}
	b2 := open(t, fresh)
	if ids, err := b2.ListKeys(bg, ""); err != nil || len(ids) != 1 {
		t.Errorf("keys after second Open = %q, %v", ids, err)
	}
}
