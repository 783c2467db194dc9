package hsmtest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
)

// IVUniquenessSamples is how many encryptions the IV uniqueness check makes
// (issue 2: IVs never repeat across 100k encryptions, on every backend).
const IVUniquenessSamples = 100_000

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, newBackend func(t *testing.T) hsm.Backend) {
	t.Helper()
	s := &suite{newBackend: newBackend, prefix: "hsmtest-" + randomHex(t) + "-"}
	b := newBackend(t)
	t.Cleanup(func() { s.cleanup(t, b) })

	t.Run("GenerateKey", func(t *testing.T) { s.testGenerateKey(t, b) })
	t.Run("ImportKey", func(t *testing.T) { s.testImportKey(t, b) })
	t.Run("DestroyKey", func(t *testing.T) { s.testDestroyKey(t, b) })
	t.Run("ListKeys", func(t *testing.T) { s.testListKeys(t, b) })
	t.Run("RoundTrip", func(t *testing.T) { s.testRoundTrip(t, b) })
	t.Run("Tamper", func(t *testing.T) { s.testTamper(t, b) })
	t.Run("UniqueIVs", func(t *testing.T) { s.testUniqueIVs(t, b) })
	t.Run("WrapKey", func(t *testing.T) { s.testWrapKey(t, b) })
	t.Run("Random", func(t *testing.T) { s.testRandom(t, b) })
	t.Run("Health", func(t *testing.T) { s.testHealth(t, b) })
	t.Run("Concurrent", func(t *testing.T) { s.testConcurrent(t, b) })
	t.Run("Close", func(t *testing.T) { s.testClose(t) })
}

type suite struct {
	newBackend func(t *testing.T) hsm.Backend
	prefix     string
}

func (s *suite) id(name string) string { return s.prefix + name }

// cleanup destroys whatever keys the suite left behind under its prefix.
func (s *suite) cleanup(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	ids, err := b.ListKeys(ctx, s.prefix)
	if err != nil {
		return // backend already closed by its own cleanup
	}
	for _, id := range ids {
		if err := b.DestroyKey(ctx, id); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("cleanup: DestroyKey(%q): %v", id, err)
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func mustGenerate(t *testing.T, b hsm.Backend, id string, bits int) {
	t.Helper()
	if err := b.GenerateKey(context.Background(), id, bits); err != nil {
		t.Fatalf("GenerateKey(%q, %d): %v", id, bits, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// pattern returns n deterministic, non-constant bytes.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

func (s *suite) testGenerateKey(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	for _, bits := range []int{128, 256} {
		id := s.id(fmt.Sprintf("gen-%d", bits))
		mustGenerate(t, b, id, bits)
		blob, err := b.Encrypt(ctx, id, []byte("hello"), nil)
		if err != nil {
			t.Fatalf("Encrypt under new %d-bit key: %v", bits, err)
		}
		got, err := b.Decrypt(ctx, id, blob, nil)
		if err != nil || string(got) != "hello" {
			t.Fatalf("Decrypt under new %d-bit key = %q, %v", bits, got, err)
		}
		wantErr(t, "GenerateKey on a taken id", b.GenerateKey(ctx, id, bits), hsm.ErrKeyExists)
	}
	for _, bits := range []int{0, -128, 64, 127, 129, 192, 255, 512} {
		id := s.id(fmt.Sprintf("gen-bad-%d", bits))
		wantErr(t, fmt.Sprintf("GenerateKey(bits=%d)", bits), b.GenerateKey(ctx, id, bits), hsm.ErrInvalidArgument)
		if _, err := b.Encrypt(ctx, id, []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("a rejected GenerateKey(bits=%d) left a key behind: Encrypt error %v", bits, err)
		}
	}
	wantErr(t, "GenerateKey with empty id", b.GenerateKey(ctx, "", 256), hsm.ErrInvalidArgument)
	// Two keys generated alike must differ.
	a, c := s.id("gen-distinct-a"), s.id("gen-distinct-b")
	mustGenerate(t, b, a, 256)
	mustGenerate(t, b, c, 256)
	blob, err := b.Encrypt(ctx, a, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(ctx, c, blob, nil); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("two generated keys decrypt each other's data: %v", err)
	}
}

// testImportKey checks that imported material is used verbatim, by
// interoperating with crypto/aes in both directions.
func (s *suite) testImportKey(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	for _, size := range []int{16, 32} {
		material := pattern(size)
		id := s.id(fmt.Sprintf("import-%d", size))
		if err := b.ImportKey(ctx, id, material); err != nil {
			t.Fatalf("ImportKey(%d bytes): %v", size, err)
		}
		if !bytes.Equal(material, pattern(size)) {
			t.Fatalf("ImportKey modified the caller's buffer")
		}
		aead := localGCM(t, material)
		pt, aad := []byte("imported key interop"), []byte("aad")

		sealed, err := b.Encrypt(ctx, id, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if err := sealed.Check(); err != nil {
			t.Fatalf("Encrypt output fails Check: %v", err)
		}
		got, err := aead.Open(nil, sealed.IV, sealed.Ciphertext, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("crypto/aes cannot open the backend's parts under the imported key: %q, %v", got, err)
		}

		iv := pattern(hsm.IVSize)
		local := hsm.Sealed{IV: iv, Ciphertext: aead.Seal(nil, iv, pt, aad)}
		got, err = b.Decrypt(ctx, id, local, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("backend cannot open a crypto/aes blob under the imported key: %q, %v", got, err)
		}
		wantErr(t, "ImportKey on a taken id", b.ImportKey(ctx, id, material), hsm.ErrKeyExists)
	}
	for _, size := range []int{0, 1, 15, 17, 24, 31, 33, 64} {
		id := s.id(fmt.Sprintf("import-bad-%d", size))
		wantErr(t, fmt.Sprintf("ImportKey(%d bytes)", size), b.ImportKey(ctx, id, pattern(size)), hsm.ErrInvalidArgument)
	}
	wantErr(t, "ImportKey with empty id", b.ImportKey(ctx, "", pattern(32)), hsm.ErrInvalidArgument)
}

func localGCM(t *testing.T, key []byte) cipher.AEAD {
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

func (s *suite) testDestroyKey(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	id := s.id("destroy")
	mustGenerate(t, b, id, 256)
	blob, err := b.Encrypt(ctx, id, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DestroyKey(ctx, id); err != nil {
		t.Fatalf("DestroyKey: %v", err)
	}
	_, err = b.Encrypt(ctx, id, []byte("x"), nil)
	wantErr(t, "Encrypt after DestroyKey", err, hsm.ErrKeyNotFound)
	_, err = b.Decrypt(ctx, id, blob, nil)
	wantErr(t, "Decrypt after DestroyKey", err, hsm.ErrKeyNotFound)
	wantErr(t, "DestroyKey twice", b.DestroyKey(ctx, id), hsm.ErrKeyNotFound)
	wantErr(t, "DestroyKey of a missing id", b.DestroyKey(ctx, s.id("never-created")), hsm.ErrKeyNotFound)
	ids, err := b.ListKeys(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Errorf("ListKeys after DestroyKey = %q, want none", ids)
	}
	// The id is free again, and the new key is a different key.
	mustGenerate(t, b, id, 256)
	if _, err := b.Decrypt(ctx, id, blob, nil); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("a re-created key opens the destroyed key's data: %v", err)
	}
}

func (s *suite) testListKeys(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	base := s.id("list-")
	created := []string{base + "b/2", base + "a", base + "b/10", base + "b/1", base + "c"}
	for _, id := range created {
		mustGenerate(t, b, id, 128)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{base, []string{base + "a", base + "b/1", base + "b/10", base + "b/2", base + "c"}},
		{base + "b/", []string{base + "b/1", base + "b/10", base + "b/2"}},
		{base + "b/1", []string{base + "b/1", base + "b/10"}},
		{base + "c", []string{base + "c"}},
		{base + "d", []string{}},
		{base + "A", []string{}}, // prefix match is case-sensitive
	}
	for _, tc := range tests {
		got, err := b.ListKeys(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("ListKeys(%q): %v", tc.prefix, err)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
			t.Errorf("ListKeys(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	all, err := b.ListKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(all) {
		t.Errorf("ListKeys(\"\") is not sorted: %q", all)
	}
	for _, id := range created {
		if !slices.Contains(all, id) {
			t.Errorf("ListKeys(\"\") misses %q", id)
		}
	}
}

func (s *suite) testRoundTrip(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	for _, bits := range []int{128, 256} {
		id := s.id(fmt.Sprintf("roundtrip-%d", bits))
		mustGenerate(t, b, id, bits)
		for _, size := range []int{0, 1, 32, 4096} {
			for _, aad := range [][]byte{nil, []byte("ctx=a"), pattern(300)} {
				name := fmt.Sprintf("bits=%d/size=%d/aad=%d", bits, size, len(aad))
				pt := pattern(size)
				blob, err := b.Encrypt(ctx, id, pt, aad)
				if err != nil {
					t.Fatalf("%s: Encrypt: %v", name, err)
				}
				if len(blob.IV) != hsm.IVSize || len(blob.Ciphertext) != size+hsm.TagSize {
					t.Errorf("%s: parts are IV %d and ciphertext %d bytes, want %d and %d", name, len(blob.IV), len(blob.Ciphertext), hsm.IVSize, size+hsm.TagSize)
				}
				if err := blob.Check(); err != nil {
					t.Fatalf("%s: Encrypt output fails Check: %v", name, err)
				}
				if size >= 16 && bytes.Contains(blob.Ciphertext, pt) {
					t.Errorf("%s: ciphertext contains the plaintext", name)
				}
				// The parts are independent: growing the IV (as a caller
				// framing them might) leaves the ciphertext alone.
				ct := bytes.Clone(blob.Ciphertext)
				_ = append(blob.IV, bytes.Repeat([]byte{0xee}, hsm.TagSize)...)
				if !bytes.Equal(blob.Ciphertext, ct) {
					t.Fatalf("%s: appending to the IV overwrote the ciphertext", name)
				}
				iv := bytes.Clone(blob.IV)
				got, err := b.Decrypt(ctx, id, blob, aad)
				if err != nil {
					t.Fatalf("%s: Decrypt: %v", name, err)
				}
				if !bytes.Equal(got, pt) {
					t.Errorf("%s: Decrypt = %x, want %x", name, got, pt)
				}
				if !bytes.Equal(blob.IV, iv) || !bytes.Equal(blob.Ciphertext, ct) {
					t.Errorf("%s: Decrypt modified its input", name)
				}
				// The framed form (what WrapKey stores) carries the same
				// parts: parsing it gives parts that open.
				framed, err := hsm.ParseSealed(blob.Encode())
				if err != nil {
					t.Fatalf("%s: ParseSealed(Encode(parts)): %v", name, err)
				}
				if got, err := b.Decrypt(ctx, id, framed, aad); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("%s: Decrypt of the parts of the framed form = %x, %v", name, got, err)
				}
				// nil and empty AAD are the same AAD.
				if len(aad) == 0 {
					if _, err := b.Decrypt(ctx, id, blob, []byte{}); err != nil {
						t.Errorf("%s: Decrypt with empty instead of nil aad: %v", name, err)
					}
				}
			}
		}
	}
	_, err := b.Encrypt(ctx, s.id("roundtrip-missing"), []byte("x"), nil)
	wantErr(t, "Encrypt under a missing key", err, hsm.ErrKeyNotFound)
}

// testTamper changes every byte of the parts (each IV byte, each ciphertext
// byte, each tag byte), truncates and extends them, gives parts of every
// wrong size, and uses a wrong AAD and a wrong key: every attempt must fail
// with exactly ErrDecrypt (never a panic, never another error).
func (s *suite) testTamper(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	id, other := s.id("tamper"), s.id("tamper-other")
	mustGenerate(t, b, id, 256)
	mustGenerate(t, b, other, 256)
	pt, aad := pattern(32), []byte("tenant=42")
	sealed, err := b.Encrypt(ctx, id, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	iv, ct := sealed.IV, sealed.Ciphertext
	mustFail := func(what string, s hsm.Sealed, aad []byte, key string) {
		t.Helper()
		got, err := b.Decrypt(ctx, key, s, aad)
		if err != hsm.ErrDecrypt { //nolint:errorlint // exactly the opaque error
			t.Errorf("%s: Decrypt = %x, %v; want ErrDecrypt itself", what, got, err)
		}
		if got != nil {
			t.Errorf("%s: Decrypt returned data with its error", what)
		}
	}
	for i := range iv {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(iv)
			bad[i] ^= mask
			mustFail(fmt.Sprintf("IV byte %d ^ %#x", i, mask), hsm.Sealed{IV: bad, Ciphertext: ct}, aad, id)
		}
	}
	for i := range ct {
		region := "ciphertext"
		if i >= len(ct)-hsm.TagSize {
			region = "tag"
		}
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(ct)
			bad[i] ^= mask
			mustFail(fmt.Sprintf("ciphertext byte %d (%s) ^ %#x", i, region, mask), hsm.Sealed{IV: iv, Ciphertext: bad}, aad, id)
		}
	}
	for n := range len(ct) {
		mustFail(fmt.Sprintf("ciphertext truncated to %d bytes", n), hsm.Sealed{IV: iv, Ciphertext: ct[:n]}, aad, id)
	}
	mustFail("extra ciphertext byte", hsm.Sealed{IV: iv, Ciphertext: append(bytes.Clone(ct), 0)}, aad, id)
	// IVs of every wrong size, including one that starts with the right IV.
	for _, n := range []int{0, 1, 8, hsm.IVSize - 1, hsm.IVSize + 1, 16, 32, 255} {
		bad := make([]byte, n)
		copy(bad, iv)
		mustFail(fmt.Sprintf("%d-byte IV", n), hsm.Sealed{IV: bad, Ciphertext: ct}, aad, id)
	}
	mustFail("nil IV", hsm.Sealed{Ciphertext: ct}, aad, id)
	mustFail("nil ciphertext", hsm.Sealed{IV: iv}, aad, id)
	mustFail("zero Sealed", hsm.Sealed{}, aad, id)
	mustFail("oversized ciphertext", hsm.Sealed{IV: iv, Ciphertext: make([]byte, hsm.MaxCiphertext+1)}, aad, id)
	// The framed form is not the parts: a format byte in front is refused.
	framed := sealed.Encode()
	mustFail("framed blob as ciphertext", hsm.Sealed{IV: iv, Ciphertext: framed}, aad, id)
	mustFail("IV shifted by the format byte", hsm.Sealed{IV: framed[:hsm.IVSize], Ciphertext: framed[hsm.IVSize:]}, aad, id)
	mustFail("IV and ciphertext swapped", hsm.Sealed{IV: ct[:hsm.IVSize], Ciphertext: append(bytes.Clone(iv), ct[hsm.IVSize:]...)}, aad, id)
	mustFail("wrong AAD", sealed, []byte("tenant=43"), id)
	mustFail("AAD with different case", sealed, []byte("Tenant=42"), id)
	mustFail("AAD missing", sealed, nil, id)
	mustFail("AAD extended", sealed, append(bytes.Clone(aad), 0), id)
	mustFail("wrong key id", sealed, aad, other)
	// The untouched parts still open.
	if got, err := b.Decrypt(ctx, id, sealed, aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("original parts no longer decrypt: %v", err)
	}
}

// testUniqueIVs encrypts IVUniquenessSamples times from ivWorkers
// goroutines at once and checks that no IV ever repeats (and that equal
// plaintexts never give equal ciphertexts).
func (s *suite) testUniqueIVs(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	id := s.id("ivs")
	mustGenerate(t, b, id, 256)
	const ivWorkers = 4
	ivs := make([][][hsm.IVSize]byte, ivWorkers)
	errs := make([]error, ivWorkers)
	var wg sync.WaitGroup
	for w := range ivWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([][hsm.IVSize]byte, 0, IVUniquenessSamples/ivWorkers)
			var prevCT []byte
			for i := range IVUniquenessSamples / ivWorkers {
				blob, err := b.Encrypt(ctx, id, []byte("same plaintext"), nil)
				if err != nil {
					errs[w] = fmt.Errorf("Encrypt #%d: %w", i, err)
					return
				}
				if len(blob.IV) != hsm.IVSize {
					errs[w] = fmt.Errorf("encryption #%d gave a %d-byte IV", i, len(blob.IV))
					return
				}
				if bytes.Equal(blob.Ciphertext, prevCT) {
					errs[w] = fmt.Errorf("encryption #%d gave the same ciphertext as the previous one", i)
					return
				}
				prevCT = blob.Ciphertext
				out = append(out, [hsm.IVSize]byte(blob.IV))
			}
			ivs[w] = out
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[[hsm.IVSize]byte]struct{}, IVUniquenessSamples)
	for _, list := range ivs {
		for _, iv := range list {
			if _, dup := seen[iv]; dup {
				t.Fatalf("IV %x repeated", iv)
			}
			seen[iv] = struct{}{}
		}
	}
	if len(seen) != IVUniquenessSamples/ivWorkers*ivWorkers {
		t.Fatalf("%d distinct IVs, want %d", len(seen), IVUniquenessSamples)
	}
}

func (s *suite) testWrapKey(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	for _, size := range []int{16, 32, 64} {
		material := pattern(size)
		aad := []byte(fmt.Sprintf("cmk=abc/version=%d", size))
		wrapped, err := b.WrapKey(ctx, material, aad)
		if err != nil {
			t.Fatalf("WrapKey(%d bytes): %v", size, err)
		}
		if _, err := hsm.ParseSealed(wrapped); err != nil {
			t.Errorf("wrapped blob does not parse as Sealed: %v", err)
		}
		if bytes.Contains(wrapped, material) {
			t.Errorf("wrapped blob contains the material")
		}
		got, err := b.UnwrapKey(ctx, wrapped, aad)
		if err != nil || !bytes.Equal(got, material) {
			t.Fatalf("UnwrapKey = %x, %v; want %x", got, err, material)
		}
		hsm.Zero(got)
		again, err := b.WrapKey(ctx, material, aad)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(again, wrapped) {
			t.Errorf("wrapping the same material twice gave the same blob")
		}

		_, err = b.UnwrapKey(ctx, wrapped, []byte("cmk=abc/version=999"))
		wantErr(t, "UnwrapKey with wrong aad", err, hsm.ErrDecrypt)
		_, err = b.UnwrapKey(ctx, wrapped, nil)
		wantErr(t, "UnwrapKey with no aad", err, hsm.ErrDecrypt)
		bad := bytes.Clone(wrapped)
		bad[len(bad)-1] ^= 1
		_, err = b.UnwrapKey(ctx, bad, aad)
		wantErr(t, "UnwrapKey of a tampered blob", err, hsm.ErrDecrypt)
		_, err = b.UnwrapKey(ctx, wrapped[:len(wrapped)-1], aad)
		wantErr(t, "UnwrapKey of a truncated blob", err, hsm.ErrDecrypt)

		// Domain separation: wrapped material is not ordinary root-key data.
		parts, err := hsm.ParseSealed(wrapped)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Decrypt(ctx, hsm.RootKeyID, parts, aad)
		wantErr(t, "Decrypt(root) of a wrapped blob with the raw aad", err, hsm.ErrDecrypt)
		// ...and Encrypt under the root key cannot forge a wrapped blob.
		_, err = b.Encrypt(ctx, hsm.RootKeyID, pattern(32), hsm.WrapAAD(aad))
		wantErr(t, "Encrypt(root) with a reserved wrap aad", err, hsm.ErrInvalidArgument)
		_, err = b.Decrypt(ctx, hsm.RootKeyID, parts, hsm.WrapAAD(aad))
		wantErr(t, "Decrypt(root) with a reserved wrap aad", err, hsm.ErrDecrypt)
	}
	// Ciphertext from a data key does not unwrap.
	id := s.id("wrap-data")
	mustGenerate(t, b, id, 256)
	blob, err := b.Encrypt(ctx, id, pattern(32), hsm.WrapAAD([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.UnwrapKey(ctx, blob.Encode(), []byte("x"))
	wantErr(t, "UnwrapKey of data encrypted under another key", err, hsm.ErrDecrypt)
}

func (s *suite) testRandom(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	seen := map[string]bool{}
	for _, n := range []int{1, 12, 16, 32, 33, 1000, 4096} {
		for range 3 {
			r, err := b.Random(ctx, n)
			if err != nil {
				t.Fatalf("Random(%d): %v", n, err)
			}
			if len(r) != n {
				t.Fatalf("Random(%d) returned %d bytes", n, len(r))
			}
			if n >= 16 {
				if seen[string(r)] {
					t.Fatalf("Random(%d) repeated an earlier output", n)
				}
				seen[string(r)] = true
				if bytes.Count(r, r[:1]) == n {
					t.Fatalf("Random(%d) returned %d identical bytes", n, n)
				}
			}
		}
	}
	// Over many bytes every byte value shows up (4096 uniform bytes miss one
	// with probability about 256*e^-16, i.e. never).
	r, err := b.Random(ctx, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var counts [256]int
	for _, c := range r {
		counts[c]++
	}
	for v, c := range counts {
		if c == 0 {
			t.Fatalf("byte value %d never appears in 4096 random bytes", v)
		}
	}
	_, err = b.Random(ctx, -1)
	wantErr(t, "Random(-1)", err, hsm.ErrInvalidArgument)
}

func (s *suite) testHealth(t *testing.T, b hsm.Backend) {
	if err := b.Health(context.Background()); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if st := b.Stats(); !st.Available || st.InUse < 0 || st.InUse > max(st.Size, 0) {
		t.Errorf("Stats of an idle healthy backend = %+v", st)
	}
}

// testConcurrent hammers one backend from 16 goroutines with every kind of
// call; run it with -race.
func (s *suite) testConcurrent(t *testing.T, b hsm.Backend) {
	ctx := context.Background()
	const workers, iterations = 16, 40
	shared := s.id("concurrent-shared")
	mustGenerate(t, b, shared, 256)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.worker(ctx, b, shared, w, iterations)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := b.Health(ctx); err != nil {
		t.Fatalf("Health after concurrent use: %v", err)
	}
}

func (s *suite) worker(ctx context.Context, b hsm.Backend, shared string, w, iterations int) error {
	own := s.id(fmt.Sprintf("concurrent-w%02d", w))
	if err := b.GenerateKey(ctx, own, 128); err != nil {
		return fmt.Errorf("worker %d: GenerateKey: %w", w, err)
	}
	for i := range iterations {
		pt := []byte(fmt.Sprintf("worker %d message %d", w, i))
		aad := []byte(fmt.Sprintf("w=%d", w))
		for _, id := range []string{shared, own} {
			blob, err := b.Encrypt(ctx, id, pt, aad)
			if err != nil {
				return fmt.Errorf("worker %d: Encrypt: %w", w, err)
			}
			got, err := b.Decrypt(ctx, id, blob, aad)
			if err != nil || !bytes.Equal(got, pt) {
				return fmt.Errorf("worker %d: Decrypt = %q, %v", w, got, err)
			}
		}
		switch i % 8 {
		case 0:
			wrapped, err := b.WrapKey(ctx, pt, aad)
			if err != nil {
				return fmt.Errorf("worker %d: WrapKey: %w", w, err)
			}
			got, err := b.UnwrapKey(ctx, wrapped, aad)
			if err != nil || !bytes.Equal(got, pt) {
				return fmt.Errorf("worker %d: UnwrapKey = %q, %v", w, got, err)
			}
		case 1:
			if _, err := b.Random(ctx, 32); err != nil {
				return fmt.Errorf("worker %d: Random: %w", w, err)
			}
		case 2:
			ids, err := b.ListKeys(ctx, own)
			if err != nil || len(ids) != 1 || ids[0] != own {
				return fmt.Errorf("worker %d: ListKeys(own) = %q, %v", w, ids, err)
			}
		case 3:
			_ = b.Stats()
			if err := b.Health(ctx); err != nil {
				return fmt.Errorf("worker %d: Health: %w", w, err)
			}
		}
	}
	// A short-lived key per worker: create, use, destroy while others run.
	tmp := s.id(fmt.Sprintf("concurrent-tmp-w%02d", w))
	if err := b.GenerateKey(ctx, tmp, 256); err != nil {
		return fmt.Errorf("worker %d: GenerateKey(tmp): %w", w, err)
	}
	if _, err := b.Encrypt(ctx, tmp, []byte("x"), nil); err != nil {
		return fmt.Errorf("worker %d: Encrypt(tmp): %w", w, err)
	}
	if err := b.DestroyKey(ctx, tmp); err != nil {
		return fmt.Errorf("worker %d: DestroyKey(tmp): %w", w, err)
	}
	if err := b.DestroyKey(ctx, own); err != nil {
		return fmt.Errorf("worker %d: DestroyKey(own): %w", w, err)
	}
	return nil
}

// testClose uses a backend of its own: after Close every call fails with
// ErrClosed and a second Close does not panic.
func (s *suite) testClose(t *testing.T) {
	ctx := context.Background()
	b := s.newBackend(t)
	id := s.id("close")
	mustGenerate(t, b, id, 256)
	blob, err := b.Encrypt(ctx, id, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := b.WrapKey(ctx, pattern(32), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DestroyKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	mustGenerate(t, b, id, 256) // so that the calls below could succeed if open
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"GenerateKey", func() error { return b.GenerateKey(ctx, s.id("close-2"), 256) }},
		{"ImportKey", func() error { return b.ImportKey(ctx, s.id("close-3"), pattern(32)) }},
		{"DestroyKey", func() error { return b.DestroyKey(ctx, id) }},
		{"ListKeys", func() error { _, err := b.ListKeys(ctx, ""); return err }},
		{"Encrypt", func() error { _, err := b.Encrypt(ctx, id, []byte("x"), nil); return err }},
		{"Decrypt", func() error { _, err := b.Decrypt(ctx, id, blob, nil); return err }},
		{"WrapKey", func() error { _, err := b.WrapKey(ctx, pattern(32), nil); return err }},
		{"UnwrapKey", func() error { _, err := b.UnwrapKey(ctx, wrapped, nil); return err }},
		{"Random", func() error { _, err := b.Random(ctx, 16); return err }},
		{"Health", func() error { return b.Health(ctx) }},
	}
	for _, c := range calls {
		wantErr(t, c.name+" after Close", c.call(), hsm.ErrClosed)
	}
	if b.Stats().Available {
		t.Errorf("Stats().Available is true after Close")
	}
	_ = b.Close() // must not panic

	// The key made before Close is cleaned up through a fresh backend.
	b2 := s.newBackend(t)
	s.cleanup(t, b2)
}
