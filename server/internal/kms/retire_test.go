package kms_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// manualFlush leaves flushing to FlushUsage and Close.
func manualFlush(c *kms.Config) { c.UsageFlushInterval = -1 }

// quiet sets the retirement quiet period.
func quiet(d time.Duration) func(*kms.Config) {
	return func(c *kms.Config) { c.RetirementQuietPeriod = d }
}

// storedUsage reads version v of key id as the database holds it.
func (e *env) storedUsage(id string, v int64) store.KeyVersion {
	e.t.Helper()
	vs, err := e.st.Versions(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range vs {
		if x.Version == v {
			return x
		}
	}
	e.t.Fatalf("key %s has no stored version %d", id, v)
	return store.KeyVersion{}
}

func version(t *testing.T, svc *kms.Service, id string, v int) kms.KeyVersionInfo {
	t.Helper()
	vs, err := svc.ListKeyVersions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range vs {
		if x.Version == v {
			return x
		}
	}
	t.Fatalf("key %s has no version %d", id, v)
	return kms.KeyVersionInfo{}
}

func sameTime(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

// TestVersionUsageCounting: every decrypting path counts against the
// ciphertext's version, in memory only until a flush; flushes of two
// replicas on one database add up, the last-used time (the time of the
// flush that carried the uses) only moves forward, and Close flushes what
// is left.
func TestVersionUsageCounting(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		a := e.svc
		b := e.service(e.db, manualFlush)
		md := e.createKey(kms.CreateKeyInput{})
		id := md.KeyID
		ct1 := e.encrypt(id, []byte("v1 data"), nil).CiphertextBlob
		if _, err := a.RotateKey(e.ctx, id); err != nil {
			t.Fatal(err)
		}
		ct2 := e.encrypt(id, []byte("v2 data"), nil).CiphertextBlob

		// Replica a: Decrypt x2, a batch of two, a ReEncrypt source: 5 uses
		// of v1; one use of v2.
		for range 2 {
			e.mustDecrypt(ct1, nil, []byte("v1 data"))
		}
		res, err := a.DecryptBatch(e.ctx, []kms.DecryptInput{{CiphertextBlob: ct1}, {CiphertextBlob: ct1}, {CiphertextBlob: ct2}})
		if err != nil || res[0].Err != nil || res[1].Err != nil || res[2].Err != nil {
			t.Fatalf("batch: %v %+v", err, res)
		}
		if _, err := a.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: ct1}); err != nil {
			t.Fatal(err)
		}
		// A failed decryption is no use.
		if _, err := a.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: ct1, EncryptionContext: map[string]string{"x": "y"}}); !isErr(err, kms.ErrInvalidCiphertext) {
			t.Fatalf("wrong context: %v", err)
		}
		e.clock.Advance(time.Minute)
		t1 := e.clock.Now()

		// Nothing reached the database yet: counting is in memory.
		if got := e.storedUsage(id, 1); got.DecryptCount != 0 || got.LastUsedAt != nil {
			t.Fatalf("stored before any flush: %d %v", got.DecryptCount, got.LastUsedAt)
		}
		// Replica a's listing adds its unflushed counts, used "now";
		// replica b sees none.
		if v := version(t, a, id, 1); v.DecryptCount != 5 || !sameTime(v.LastUsedAt, t1) {
			t.Fatalf("a sees v1 %+v, want 5 uses, last %s", v, t1)
		}
		if v := version(t, b, id, 1); v.DecryptCount != 0 || v.LastUsedAt != nil {
			t.Fatalf("b sees v1 %+v before a flushed", v)
		}
		if err := a.FlushUsage(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.storedUsage(id, 1); got.DecryptCount != 5 || !sameTime(got.LastUsedAt, t1) {
			t.Fatalf("after a's flush: %d %v", got.DecryptCount, got.LastUsedAt)
		}
		if got := e.storedUsage(id, 2); got.DecryptCount != 1 || !sameTime(got.LastUsedAt, t1) {
			t.Fatalf("v2 after a's flush: %d %v", got.DecryptCount, got.LastUsedAt)
		}
		if v := version(t, b, id, 1); v.DecryptCount != 5 || !sameTime(v.LastUsedAt, t1) {
			t.Fatalf("b sees v1 %+v after a flushed", v)
		}

		// Replica b: 3 uses of v1, flushed with a clock 30s behind.
		for range 3 {
			if _, err := b.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: ct1}); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(-30 * time.Second)
		if err := b.FlushUsage(e.ctx); err != nil {
			t.Fatal(err)
		}
		// Added, not overwritten; b's earlier time does not move last_used back.
		if got := e.storedUsage(id, 1); got.DecryptCount != 8 || !sameTime(got.LastUsedAt, t1) {
			t.Fatalf("after both flushes: %d %v, want 8 at %s", got.DecryptCount, got.LastUsedAt, t1)
		}
		// A flush with nothing new changes nothing.
		e.clock.Advance(time.Hour)
		if err := a.FlushUsage(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.storedUsage(id, 1); got.DecryptCount != 8 || !sameTime(got.LastUsedAt, t1) {
			t.Fatalf("after an empty flush: %d %v", got.DecryptCount, got.LastUsedAt)
		}

		// A later use on b moves last_used forward; Close flushes it.
		tLate := e.clock.Now()
		if _, err := b.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: ct1}); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := e.storedUsage(id, 1); got.DecryptCount != 9 || !sameTime(got.LastUsedAt, tLate) {
			t.Fatalf("after close: %d %v, want 9 at %s", got.DecryptCount, got.LastUsedAt, tLate)
		}
	}, manualFlush)
}

// TestVersionUsageBackgroundFlush: with a flush interval the counts reach
// the database without any call.
func TestVersionUsageBackgroundFlush(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		id := e.createKey(kms.CreateKeyInput{}).KeyID
		ct := e.encrypt(id, []byte("x"), nil).CiphertextBlob
		for range 4 {
			e.mustDecrypt(ct, nil, []byte("x"))
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.storedUsage(id, 1).DecryptCount != 4 {
			if time.Now().After(deadline) {
				t.Fatalf("count not flushed in 10s: %d", e.storedUsage(id, 1).DecryptCount)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}, func(c *kms.Config) { c.UsageFlushInterval = 50 * time.Millisecond })
}

// TestRetirement is the retirement workflow: refused while the old version
// is in use, allowed after renewal and the quiet period; a disabled version
// refuses every decrypting path, is enabled again, and is destroyed only
// with its key.
func TestRetirement(t *testing.T) {
	const period = time.Hour
	forEach(t, func(t *testing.T, e *env) {
		id := e.createKey(kms.CreateKeyInput{Alias: "alias/retire"}).KeyID
		data := []string{"alpha", "beta", "gamma"}
		ec := map[string]string{"table": "users"}
		var old [][]byte
		for _, d := range data {
			old = append(old, e.encrypt(id, []byte(d), ec).CiphertextBlob)
		}

		// The primary version is never retired, forced or not.
		for _, force := range []bool{false, true} {
			_, err := e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: 1, Force: force})
			if !isErr(err, kms.ErrInvalidKeyState) || !strings.Contains(err.Error(), "rotate") {
				t.Fatalf("disable primary (force %v): %v", force, err)
			}
		}
		if _, err := e.svc.RotateKey(e.ctx, id); err != nil {
			t.Fatal(err)
		}

		// The application still reads old data: v1 is in use.
		e.mustDecrypt(old[0], ec, []byte(data[0]))
		lastUse := e.clock.Now()
		if err := e.svc.FlushUsage(e.ctx); err != nil { // the periodic flush
			t.Fatal(err)
		}
		e.clock.Advance(period / 2)
		_, err := e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: "alias/retire", Version: 1})
		if !isErr(err, kms.ErrVersionInUse) {
			t.Fatalf("disable in-use version: %v", err)
		}
		for _, want := range []string{lastUse.Format(time.RFC3339), "force", "quiet period"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("in-use message %q lacks %q", err, want)
			}
		}
		// Another replica sees the use through the database: the check
		// flushed this replica's counts first.
		other := e.service(e.db, manualFlush, quiet(period))
		if _, err := other.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: 1}); !isErr(err, kms.ErrVersionInUse) {
			t.Fatalf("disable on another replica: %v", err)
		}

		// Renewal: re-encrypt every old ciphertext under the primary. The
		// renewal itself decrypts under v1, so the quiet period starts now.
		var renewed [][]byte
		for _, ct := range old {
			out, err := e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: ct, SourceEncryptionContext: ec, DestinationEncryptionContext: ec})
			if err != nil || out.SourceKeyVersion != 1 || out.KeyVersion != 2 {
				t.Fatalf("renew: %+v %v", out, err)
			}
			renewed = append(renewed, out.CiphertextBlob)
		}
		if err := e.svc.FlushUsage(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(period - time.Second)
		if _, err := e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: 1}); !isErr(err, kms.ErrVersionInUse) {
			t.Fatalf("disable just before the quiet period ended: %v", err)
		}
		e.clock.Advance(2 * time.Second)
		v, err := e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: 1})
		if err != nil {
			t.Fatalf("disable after renewal and quiet period: %v", err)
		}
		if v.State != kms.VersionDisabled || v.Version != 1 || v.Primary || v.DecryptCount != 4 {
			t.Fatalf("disabled version %+v", v)
		}
		// Idempotent.
		if v, err := e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: 1}); err != nil || v.State != kms.VersionDisabled {
			t.Fatalf("disable again: %+v %v", v, err)
		}

		// Renewed data decrypts; old data fails on every path, with the
		// disabled-version error, and that failure is not a use.
		for i, ct := range renewed {
			e.mustDecrypt(ct, ec, []byte(data[i]))
		}
		paths := map[string]func() error{
			"Decrypt": func() error {
				_, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: old[1], EncryptionContext: ec})
				return err
			},
			"Decrypt wrong context": func() error {
				_, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: old[1]})
				return err
			},
			"DecryptBatch": func() error {
				res, err := e.svc.DecryptBatch(e.ctx, []kms.DecryptInput{{CiphertextBlob: renewed[0], EncryptionContext: ec}, {CiphertextBlob: old[1], EncryptionContext: ec}})
				if err != nil || res[0].Err != nil {
					t.Fatalf("batch: %v %+v", err, res)
				}
				return res[1].Err
			},
			"ReEncrypt source": func() error {
				_, err := e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: old[2], SourceEncryptionContext: ec})
				return err
			},
			"other replica": func() error {
				_, err := other.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: old[1], EncryptionContext: ec})
				return err
			},
		}
		for name, f := range paths {
			err := f()
			if !isErr(err, kms.ErrKeyVersionDisabled) || isErr(err, kms.ErrInvalidCiphertext) {
				t.Errorf("%s under a disabled version: %v", name, err)
			} else if !strings.Contains(err.Error(), "version 1 of key "+id) {
				t.Errorf("%s: message %q does not name the version", name, err)
			}
		}
		// Encrypt uses the primary and is unaffected.
		e.encrypt(id, []byte("new"), nil)
		if got := version(t, e.svc, id, 1); got.DecryptCount != 4 || got.State != kms.VersionDisabled {
			t.Fatalf("v1 after refused decryptions: %+v", got)
		}

		// Enabling undoes it; the material was kept.
		if v, err := e.svc.EnableKeyVersion(e.ctx, "alias/retire", 1); err != nil || v.State != kms.VersionEnabled {
			t.Fatalf("enable: %+v %v", v, err)
		}
		for i, ct := range old {
			e.mustDecrypt(ct, ec, []byte(data[i]))
		}
		if v, err := e.svc.EnableKeyVersion(e.ctx, id, 1); err != nil || v.State != kms.VersionEnabled {
			t.Fatalf("enable again: %+v %v", v, err)
		}

		// Forced retirement ignores the recent use.
		v, err = e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: 1, Force: true})
		if err != nil || v.State != kms.VersionDisabled {
			t.Fatalf("forced disable: %+v %v", v, err)
		}
		if got := e.storedUsage(id, 1); e.pl == kms.ProtectionSoftware && len(got.WrappedMaterial) == 0 ||
			e.pl == kms.ProtectionHSM && !slices.Contains(e.hsmObjects(id), got.HSMObjectID) {
			t.Fatal("disabled version lost its material")
		}

		// Unknown versions and bad input.
		for _, tc := range []struct {
			version int
			want    error
		}{{3, kms.ErrNotFound}, {0, kms.ErrValidation}, {-1, kms.ErrValidation}} {
			if _, err := e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: tc.version, Force: true}); !isErr(err, tc.want) {
				t.Errorf("disable version %d: %v, want %v", tc.version, err, tc.want)
			}
			if _, err := e.svc.EnableKeyVersion(e.ctx, id, tc.version); !isErr(err, tc.want) {
				t.Errorf("enable version %d: %v, want %v", tc.version, err, tc.want)
			}
		}

		// Destroying the key destroys the disabled version too; then the
		// version can be neither enabled nor disabled.
		if _, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: id, PendingWindowDays: 7}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.EnableKeyVersion(e.ctx, id, 1); !isErr(err, kms.ErrInvalidKeyState) {
			t.Fatalf("enable version of a key pending deletion: %v", err)
		}
		e.clock.Advance(8 * 24 * time.Hour)
		if _, err := e.svc.DestroyDueKeys(e.ctx); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int64{1, 2} {
			if got := e.storedUsage(id, n); got.State != store.VersionDestroyed || got.WrappedMaterial != nil {
				t.Fatalf("version %d after destruction: %s", n, got.State)
			}
		}
		if objs := e.hsmObjects(id); len(objs) != 0 {
			t.Fatalf("HSM objects left: %v", objs)
		}
	}, manualFlush, quiet(period))
}

// TestRetirementNoQuietPeriod: a negative quiet period disables the check.
func TestRetirementNoQuietPeriod(t *testing.T) {
	e := newEnv(t, migrated(t, dbtest.Open(t, dbtest.SQLite)), levels[0], manualFlush, quiet(-1))
	id := e.createKey(kms.CreateKeyInput{}).KeyID
	ct := e.encrypt(id, []byte("x"), nil).CiphertextBlob
	if _, err := e.svc.RotateKey(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.mustDecrypt(ct, nil, []byte("x"))
	if _, err := e.svc.DisableKeyVersion(e.ctx, kms.DisableKeyVersionInput{KeyID: id, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: ct}); !errors.Is(err, kms.ErrKeyVersionDisabled) {
		t.Fatal(err)
	}
}
