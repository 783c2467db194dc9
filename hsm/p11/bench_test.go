package p11_test

import (
	"crypto/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// BenchmarkEncryptDataKey measures AES-GCM encryption of a 32-byte data key
// under an HSM key through the Backend, beside a raw miekg/pkcs11 loop on
// the same token (one session per goroutine, fresh IV and GCM params per
// call, EncryptInit+Encrypt). The difference is the layer's overhead: pool,
// gate, handle cache and Sealed encoding.
//
//	go test -run '^$' -bench . ./hsm/p11/
func BenchmarkEncryptDataKey(b *testing.B) {
	be := open(b, softhsmtest.New(b))
	generate(b, be, "bench", 256)
	dk := make([]byte, 32)
	aad := []byte("cmk=bench/version=1")
	p, slot := p11.Raw(be)

	b.Run("backend/serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.Encrypt(bg, "bench", dk, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/serial", func(b *testing.B) {
		s, h := rawBenchSession(b, p, slot)
		for b.Loop() {
			rawEncrypt(b, p, s, h, dk, aad)
		}
	})
	b.Run("backend/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := be.Encrypt(bg, "bench", dk, aad); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			s, h := rawBenchSession(b, p, slot)
			for pb.Next() {
				rawEncrypt(b, p, s, h, dk, aad)
			}
		})
	})
}

// BenchmarkOverhead alternates one Backend call and one raw call in the same
// loop, so load from other processes hits both alike, and reports the
// Backend's overhead over the raw loop in percent. The overhead is computed
// from the medians of the per-call times, which a shared, busy machine
// disturbs far less than the means (also reported).
func BenchmarkOverhead(b *testing.B) {
	be := open(b, softhsmtest.New(b))
	generate(b, be, "bench", 256)
	dk := make([]byte, 32)
	aad := []byte("cmk=bench/version=1")
	p, slot := p11.Raw(be)
	s, h := rawBenchSession(b, p, slot)
	var layer, raw []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := be.Encrypt(bg, "bench", dk, aad); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		rawEncrypt(b, p, s, h, dk, aad)
		t2 := time.Now()
		layer = append(layer, t1.Sub(t0))
		raw = append(raw, t2.Sub(t1))
	}
	reportOverhead(b, "backend", layer, raw)
}

// BenchmarkOverheadParallel is BenchmarkOverhead with GOMAXPROCS goroutines
// (RunParallel), each alternating Backend calls (sharing the pool) with raw
// calls on a session of its own.
func BenchmarkOverheadParallel(b *testing.B) {
	be := open(b, softhsmtest.New(b))
	generate(b, be, "bench", 256)
	dk := make([]byte, 32)
	aad := []byte("cmk=bench/version=1")
	p, slot := p11.Raw(be)
	var mu sync.Mutex
	var layer, raw []time.Duration
	b.RunParallel(func(pb *testing.PB) {
		s, h := rawBenchSession(b, p, slot)
		var l, r []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if _, err := be.Encrypt(bg, "bench", dk, aad); err != nil {
				b.Error(err)
				return
			}
			t1 := time.Now()
			rawEncrypt(b, p, s, h, dk, aad)
			t2 := time.Now()
			l = append(l, t1.Sub(t0))
			r = append(r, t2.Sub(t1))
		}
		mu.Lock()
		layer, raw = append(layer, l...), append(raw, r...)
		mu.Unlock()
	})
	reportOverhead(b, "backend", layer, raw)
}

// reportOverhead reports the mean and median of both series and the
// overhead of the first over the second, from the medians.
func reportOverhead(b *testing.B, name string, layer, raw []time.Duration) {
	mean := func(d []time.Duration) float64 {
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		return float64(sum.Nanoseconds()) / float64(len(d))
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	if len(layer) == 0 {
		return
	}
	b.ReportMetric(mean(layer), name+"-mean-ns/op")
	b.ReportMetric(mean(raw), "raw-mean-ns/op")
	ml, mr := median(layer), median(raw)
	b.ReportMetric(ml, name+"-p50-ns/op")
	b.ReportMetric(mr, "raw-p50-ns/op")
	b.ReportMetric(100*(ml/mr-1), "overhead-%")
}

func rawBenchSession(b *testing.B, p *pkcs11.Ctx, slot uint) (pkcs11.SessionHandle, pkcs11.ObjectHandle) {
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION) // as the Backend's
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.CloseSession(s) })
	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, []byte("bench"))}); err != nil {
		b.Fatal(err)
	}
	objs, _, err := p.FindObjects(s, 1)
	_ = p.FindObjectsFinal(s)
	if err != nil || len(objs) != 1 {
		b.Fatalf("find bench key: %v", err)
	}
	return s, objs[0]
}

func rawEncrypt(b *testing.B, p *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle, pt, aad []byte) {
	iv := make([]byte, hsm.IVSize)
	_, _ = rand.Read(iv)
	params := pkcs11.NewGCMParams(iv, aad, 128)
	if err := p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Encrypt(s, pt); err != nil {
		b.Fatal(err)
	}
	params.Free()
}
