package envelope

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzKey is the data key of the fuzzers: they exercise the format layer
// (header codec, key derivation, STREAM chunking) without KMS.
var fuzzKey = bytes.Repeat([]byte{0x42}, dataKeySize)

var fuzzRecipients = []Recipient{{KeyID: "fuzz-key", WrappedKey: []byte("wrapped")}}

func sealWithKey(t testing.TB, pt []byte, cs int, encCtx map[string]string, split int) []byte {
	var out bytes.Buffer
	w, err := newWriter(&out, bytes.Clone(fuzzKey), fuzzRecipients, cs, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	for rest := pt; len(rest) > 0; {
		k := min(len(rest), max(split, 1))
		if _, err := w.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func openWithKey(stream []byte) ([]byte, *Header, error) {
	src := bytes.NewReader(stream)
	h, err := ReadHeader(src)
	if err != nil {
		return nil, nil, err
	}
	r, err := newReader(src, h, bytes.Clone(fuzzKey))
	if err != nil {
		return nil, h, err
	}
	pt, err := io.ReadAll(r)
	return pt, h, err
}

// FuzzRoundTrip: whatever the data, chunk size, context and write sizes,
// the stream decrypts to the data, its size is predictable from the
// header, and dropping its last byte makes it fail.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{}, uint16(16), "", "", uint16(1))
	f.Add([]byte("hello, stream"), uint16(16), "tenant", "7", uint16(3))
	f.Add(bytes.Repeat([]byte{7}, 100), uint16(50), "a", "", uint16(50))
	f.Fuzz(func(t *testing.T, data []byte, cs uint16, k, v string, split uint16) {
		chunk := MinChunkSize + int(cs)%512
		var encCtx map[string]string
		if k != "" {
			encCtx = map[string]string{k: v}
			if checkContext(encCtx) != nil {
				return
			}
		}
		stream := sealWithKey(t, data, chunk, encCtx, int(split))
		got, h, err := openWithKey(stream)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip: got %d bytes, want %d", len(got), len(data))
		}
		if n, _, err := h.BodySize(int64(len(stream))); err != nil || n != int64(len(data)) {
			t.Fatalf("BodySize %d, %v; want %d", n, err, len(data))
		}
		if h.ChunkSize != chunk || len(h.Context) != len(encCtx) || h.Context[k] != encCtx[k] {
			t.Fatalf("header %+v", h)
		}
		if _, _, err := openWithKey(stream[:len(stream)-1]); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("truncated by one byte: %v", err)
		}
	})
}

// FuzzReader feeds arbitrary bytes to the header parser and the reader:
// they must return an error or the plaintext, never panic, and never
// return plaintext from a stream that does not authenticate.
func FuzzReader(f *testing.F) {
	f.Add(sealWithKey(f, []byte("seed plaintext over several chunks"), MinChunkSize, map[string]string{"k": "v"}, 5))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, stream []byte) {
		got, h, err := openWithKey(stream)
		if h != nil {
			h.BodySize(int64(len(stream)))
		}
		if err == nil {
			// Only a stream sealed under fuzzKey can get here; it must
			// re-parse identically and have the size its header predicts.
			if n, _, err := h.BodySize(int64(len(stream))); err != nil || n != int64(len(got)) {
				t.Fatalf("authenticated stream with BodySize %d, %v; plaintext %d", n, err, len(got))
			}
		}
		if _, err := ReadHeader(bytes.NewReader(stream)); err == nil && h == nil {
			t.Fatal("ReadHeader is not deterministic")
		}
	})
}

// failAfter is a writer or reader that fails once n bytes have passed.
type failAfter struct {
	n   int
	r   io.Reader
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

func TestIOErrorsPropagate(t *testing.T) {
	boom := errors.New("disk full")
	pt := bytes.Repeat([]byte("x"), 5*MinChunkSize)
	// The destination fails inside the body: the error sticks, Close reports it.
	w, err := newWriter(&failAfter{n: 150, err: boom}, bytes.Clone(fuzzKey), fuzzRecipients, MinChunkSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(pt)
	if cerr := w.Close(); !errors.Is(werr, boom) && !errors.Is(cerr, boom) {
		t.Fatalf("write %v, close %v", werr, cerr)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Fatal("write after failure succeeded")
	}
	// The destination fails on the header: no Writer.
	if _, err := newWriter(&failAfter{n: 10, err: boom}, bytes.Clone(fuzzKey), fuzzRecipients, MinChunkSize, nil); !errors.Is(err, boom) {
		t.Fatalf("header write: %v", err)
	}
	// The source fails mid-body: the reader returns that error, not EOF.
	stream := sealWithKey(t, pt, MinChunkSize, nil, 7)
	src := &failAfter{n: len(stream) - 20, r: bytes.NewReader(stream), err: boom}
	h, err := ReadHeader(src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(src, h, bytes.Clone(fuzzKey))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, boom) || !bytes.Equal(got, pt[:len(got)]) {
		t.Fatalf("read: %v after %d bytes", err, len(got))
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Fatalf("read after failure: %v", err)
	}
}
