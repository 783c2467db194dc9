//go:build unix

package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"
)

// benchSize is the stream size of the throughput benchmarks. Compare the
// sub-benchmarks of one run: io.Copy and bare AES-GCM over the same
// 64 KiB chunks are the baselines.
const benchSize = 256 << 20

// cpuTime is the process's user+system CPU time. The machines these
// benchmarks run on are shared: MB per CPU-second is the figure that does
// not depend on how many other processes compete for the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perCPU reports MB per CPU-second since start.
func perCPU(b *testing.B, start time.Duration) {
	if d := (cpuTime() - start).Seconds(); d > 0 {
		b.ReportMetric(float64(benchSize)*float64(b.N)/1e6/d, "MB/cpu-s")
	}
}

// onlyWriter hides io.Discard's ReaderFrom so io.Copy uses a buffer.
type onlyWriter struct{ io.Writer }

func BenchmarkThroughput(b *testing.B) {
	pattern := randBytes(patternLen)
	gen := func() io.Reader { return &genReader{pattern: pattern, n: benchSize} }
	cs := DefaultChunkSize

	b.Run("io.Copy", func(b *testing.B) {
		b.SetBytes(benchSize)
		start := cpuTime()
		defer func() { perCPU(b, start) }()
		buf := make([]byte, cs)
		for b.Loop() {
			if _, err := io.CopyBuffer(onlyWriter{io.Discard}, gen(), buf); err != nil {
				b.Fatal(err)
			}
		}
	})

	block, _ := aes.NewCipher(fuzzKey)
	gcm, _ := cipher.NewGCM(block)
	var nonce [12]byte
	b.Run("bare-aesgcm-seal", func(b *testing.B) {
		b.SetBytes(benchSize)
		start := cpuTime()
		defer func() { perCPU(b, start) }()
		buf := make([]byte, cs, cs+TagSize)
		for b.Loop() {
			r := gen()
			for i := uint32(0); ; i++ {
				n, err := io.ReadFull(r, buf[:cs])
				if n > 0 {
					binary.BigEndian.PutUint32(nonce[7:], i)
					io.Discard.Write(gcm.Seal(buf[:0], nonce[:], buf[:n], nil))
				}
				if err != nil {
					break
				}
			}
		}
	})

	b.Run("encrypt", func(b *testing.B) {
		b.SetBytes(benchSize)
		start := cpuTime()
		defer func() { perCPU(b, start) }()
		for b.Loop() {
			w, err := newWriter(io.Discard, bytes.Clone(fuzzKey), fuzzRecipients, cs, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(w, gen()); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})

	// The decrypt side reads a stream encrypted once, from memory.
	var stream bytes.Buffer
	stream.Grow(benchSize + benchSize/cs*TagSize + 4096)
	w, _ := newWriter(&stream, bytes.Clone(fuzzKey), fuzzRecipients, cs, nil)
	io.Copy(w, gen())
	w.Close()
	enc := stream.Bytes()
	h, _ := ReadHeader(bytes.NewReader(enc))
	body := enc[h.Size:]

	b.Run("bare-aesgcm-open", func(b *testing.B) {
		b.SetBytes(benchSize)
		start := cpuTime()
		defer func() { perCPU(b, start) }()
		k, err := deriveKeys(bytes.Clone(fuzzKey), h)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, cs+TagSize)
		var nonce [12]byte
		for b.Loop() {
			rest := body
			for i := uint32(0); len(rest) > 0; i++ {
				n := copy(buf, rest)
				rest = rest[n:]
				h.nonce(&nonce, i, len(rest) == 0)
				pt, err := k.aead.Open(buf[:0], nonce[:], buf[:n], nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Discard.Write(pt)
			}
		}
	})

	b.Run("decrypt", func(b *testing.B) {
		b.SetBytes(benchSize)
		start := cpuTime()
		defer func() { perCPU(b, start) }()
		for b.Loop() {
			src := bytes.NewReader(enc)
			h, err := ReadHeader(src)
			if err != nil {
				b.Fatal(err)
			}
			r, err := newReader(src, h, bytes.Clone(fuzzKey))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
				b.Fatal(n, err)
			}
		}
	})
}

// BenchmarkSmallFiles writes and reads b.N one-line files under one
// master key against a real kmsd and reports kmsd calls per file, with
// and without the client's caches (run with -benchtime 10000x for the
// 10k-file figure).
func BenchmarkSmallFiles(b *testing.B) {
	e := setup(b)
	for _, tc := range []struct {
		name  string
		kms   func() KMS
		extra []string
	}{
		{"client", func() KMS { return e.client }, nil},
		{"cached", func() KMS { return e.cached(b) }, nil},
		{"cached-2-recipients", func() KMS { return e.cached(b) }, []string{"alias/stream-b"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := New(tc.kms())
			ctx := context.Background()
			opts := WriterOptions{ExtraKeyIDs: tc.extra, Context: map[string]string{"dir": "logs"}, SizeHint: 32}
			var out bytes.Buffer
			var writes, reads int64
			cpu := cpuTime()
			for i := 0; b.Loop(); i++ {
				pt := fmt.Appendf(nil, "log line %d", i)
				out.Reset()
				before := e.calls.calls.Load()
				w, err := c.NewWriter(ctx, &out, "alias/stream-a", opts)
				if err != nil {
					b.Fatal(err)
				}
				w.Write(pt)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				mid := e.calls.calls.Load()
				r, err := c.NewReader(ctx, &out, ReaderOptions{})
				if err != nil {
					b.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, pt) {
					b.Fatal(err)
				}
				writes += mid - before
				reads += e.calls.calls.Load() - mid
			}
			b.ReportMetric(float64(cpuTime()-cpu)/1e3/float64(b.N), "cpu-µs/file")
			b.ReportMetric(float64(writes)/float64(b.N), "kmsd-calls/write")
			b.ReportMetric(float64(reads)/float64(b.N), "kmsd-calls/read")
		})
	}
}
