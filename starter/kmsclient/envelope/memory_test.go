package envelope

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// patternLen is the period of the generated stream: a prime, so that
// chunk boundaries fall everywhere in the pattern.
const patternLen = 65521

// genReader produces n bytes repeating pattern, without allocating.
type genReader struct {
	pattern []byte
	off     int64
	n       int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n-g.off)]
	done := 0
	for done < len(p) {
		i := int((g.off + int64(done)) % patternLen)
		done += copy(p[done:], g.pattern[i:])
	}
	g.off += int64(done)
	return done, nil
}

// checkWriter verifies that what it is given is the generator's output.
type checkWriter struct {
	pattern []byte
	off     int64
	err     error
}

func (c *checkWriter) Write(p []byte) (int, error) {
	for done := 0; done < len(p); {
		i := int(c.off % patternLen)
		k := min(len(p)-done, patternLen-i)
		if c.err == nil && !bytes.Equal(p[done:done+k], c.pattern[i:i+k]) {
			c.err = fmt.Errorf("plaintext differs near offset %d", c.off)
		}
		done += k
		c.off += int64(k)
	}
	return len(p), nil
}

// TestMemoryFlat streams 1 GiB through a Writer, a pipe and a Reader and
// samples the heap while it runs: memory must not grow with the stream.
func TestMemoryFlat(t *testing.T) {
	e := setup(t)
	c := New(e.client)
	ctx := context.Background()
	size := int64(1 << 30)
	if raceEnabled {
		size = 64 << 20
	}
	pattern := randBytes(patternLen)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	pr, pw := io.Pipe()
	go func() {
		w, err := c.NewWriter(ctx, pw, e.keyA, WriterOptions{SizeHint: size})
		if err == nil {
			_, err = io.Copy(w, &genReader{pattern: pattern, n: size})
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	start := time.Now()
	r, err := c.NewReader(ctx, pr, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cw := &checkWriter{pattern: pattern}
	n, err := io.Copy(cw, r)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil || cw.err != nil || n != size {
		t.Fatalf("streamed %d of %d bytes: %v, %v", n, size, err, cw.err)
	}
	growth := int64(peak.Load()) - int64(base)
	t.Logf("streamed %d MiB (encrypt+decrypt) in %s; heap in use: base %.1f MiB, peak %.1f MiB, growth %.2f MiB",
		size>>20, elapsed.Round(time.Millisecond), float64(base)/(1<<20), float64(peak.Load())/(1<<20), float64(growth)/(1<<20))
	if growth > 32<<20 {
		t.Fatalf("heap grew by %d MiB while streaming %d MiB", growth>>20, size>>20)
	}
}
