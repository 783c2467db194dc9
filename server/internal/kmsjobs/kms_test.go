package kmsjobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// auditSink records the Audit hook's calls.
type auditSink struct {
	mu  sync.Mutex
	got []jobs.Result
	err error
}

func (a *auditSink) hook(_ context.Context, r jobs.Result) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, r)
	return a.err
}

func (a *auditSink) results() []jobs.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]jobs.Result(nil), a.got...)
}

// TestMaintenanceOnRealKMS drives the real key service through the
// scheduler's jobs with a fake business clock, on every database.
func TestMaintenanceOnRealKMS(t *testing.T) {
	type fixture struct {
		svc   *kms.Service
		db    *gorm.DB
		hsm   *devhsm.Backend
		clock *fakeClock
		keyID string
		blob  []byte
	}
	for _, tc := range []struct {
		name    string
		job     string
		setup   func(t *testing.T, f *fixture)
		advance time.Duration // business time until the job is due
		check   func(t *testing.T, f *fixture)
	}{
		{
			name: "deletion window ended: key destroyed, decrypt fails",
			job:  jobs.JobDestroyDueKeys,
			setup: func(t *testing.T, f *fixture) {
				if _, err := f.svc.ScheduleKeyDeletion(context.Background(), kms.ScheduleKeyDeletionInput{KeyID: f.keyID, PendingWindowDays: 7}); err != nil {
					t.Fatal(err)
				}
			},
			advance: 7*24*time.Hour + time.Minute,
			check: func(t *testing.T, f *fixture) {
				md, err := f.svc.DescribeKey(context.Background(), f.keyID)
				if err != nil {
					t.Fatal(err)
				}
				if md.KeyState != kms.KeyStateDestroyed {
					t.Fatalf("state %s, want Destroyed", md.KeyState)
				}
				vs, err := f.svc.ListKeyVersions(context.Background(), f.keyID)
				if err != nil || len(vs) != 1 || vs[0].State != kms.VersionDestroyed {
					t.Fatalf("versions after destroy: %+v, %v; want the one version Destroyed", vs, err)
				}
				if ids := hsmObjects(t, f.hsm); len(ids) != 0 {
					t.Fatalf("HSM objects left after destroy: %v", ids)
				}
				_, err = f.svc.Decrypt(context.Background(), kms.DecryptInput{CiphertextBlob: f.blob})
				if !errors.Is(err, kms.ErrInvalidKeyState) {
					t.Fatalf("decrypt after destroy: %v, want ErrInvalidKeyState", err)
				}
			},
		},
		{
			name: "orphaned HSM object past its grace: removed, live version and unrecorded object kept",
			job:  jobs.JobCleanupOrphans,
			setup: func(t *testing.T, f *fixture) {
				// What a rotation that crashed after creating its HSM object
				// leaves: an intent row and the object, never committed.
				ctx := context.Background()
				id := fmt.Sprintf("%s%s-v2-t%x-0badc0de.%s", kms.HSMObjectPrefix, f.keyID, f.clock.Now().Unix(), f.svc.DeploymentID())
				if err := store.New(f.db).RecordHSMIntent(ctx, &store.HSMIntent{ObjectID: id, KeyID: f.keyID, Version: 2, CreatedAt: f.clock.Now()}); err != nil {
					t.Fatal(err)
				}
				if err := f.hsm.GenerateKey(ctx, id, 256); err != nil {
					t.Fatal(err)
				}
				// An object this deployment never recorded (another
				// deployment's on a shared token) is never touched.
				foreign := fmt.Sprintf("%sforeign-v1-t%x-0badc0de.0000000000000000", kms.HSMObjectPrefix, f.clock.Now().Unix())
				if err := f.hsm.GenerateKey(ctx, foreign, 256); err != nil {
					t.Fatal(err)
				}
				if ids := hsmObjects(t, f.hsm); len(ids) != 3 {
					t.Fatalf("HSM objects before cleanup: %v", ids)
				}
			},
			advance: kms.DefaultOrphanGrace + time.Minute,
			check: func(t *testing.T, f *fixture) {
				ids := hsmObjects(t, f.hsm)
				if len(ids) != 2 || strings.Contains(ids[0]+ids[1], "-v2-") || !strings.Contains(ids[0]+ids[1], "foreign") {
					t.Fatalf("HSM objects after cleanup: %v, want the live v1 and the unrecorded object", ids)
				}
				dec, err := f.svc.Decrypt(context.Background(), kms.DecryptInput{CiphertextBlob: f.blob})
				if err != nil || string(dec.Plaintext) != "secret" {
					t.Fatalf("decrypt after cleanup: %v", err)
				}
			},
		},
		{
			name: "rotation due: new primary version, old ciphertext still decrypts",
			job:  jobs.JobRotateDueKeys,
			setup: func(t *testing.T, f *fixture) {
				if _, err := f.svc.SetRotationPolicy(context.Background(), kms.SetRotationPolicyInput{KeyID: f.keyID, Enabled: true, PeriodDays: 90}); err != nil {
					t.Fatal(err)
				}
			},
			advance: 90*24*time.Hour + time.Minute,
			check: func(t *testing.T, f *fixture) {
				ctx := context.Background()
				md, err := f.svc.DescribeKey(ctx, f.keyID)
				if err != nil {
					t.Fatal(err)
				}
				if md.PrimaryVersion != 2 || md.KeyState != kms.KeyStateEnabled {
					t.Fatalf("after rotation: primary %d state %s, want 2 Enabled", md.PrimaryVersion, md.KeyState)
				}
				if md.Rotation.NextRotationAt == nil || !md.Rotation.NextRotationAt.After(f.clock.Now()) {
					t.Fatalf("next rotation %v not in the future of %v", md.Rotation.NextRotationAt, f.clock.Now())
				}
				dec, err := f.svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: f.blob})
				if err != nil || string(dec.Plaintext) != "secret" || dec.KeyVersion != 1 {
					t.Fatalf("old ciphertext: %v %+v", err, dec)
				}
				enc, err := f.svc.Encrypt(ctx, kms.EncryptInput{KeyID: f.keyID, Plaintext: []byte("x")})
				if err != nil || enc.KeyVersion != 2 {
					t.Fatalf("new encrypt: %v version %v", err, enc)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
				ctx := context.Background()
				svc, clock, backend := newKMS(t, db)
				key, err := svc.CreateKey(ctx, kms.CreateKeyInput{ProtectionLevel: kms.ProtectionHSM})
				if err != nil {
					t.Fatal(err)
				}
				enc, err := svc.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("secret")})
				if err != nil {
					t.Fatal(err)
				}
				f := &fixture{svc: svc, db: db, hsm: backend, clock: clock, keyID: key.KeyID, blob: enc.CiphertextBlob}
				tc.setup(t, f)

				reg := prometheus.NewRegistry()
				sink := &auditSink{}
				s, err := jobs.New(jobs.Config{Registry: reg, Audit: sink.hook}, svc)
				if err != nil {
					t.Fatal(err)
				}
				defer stop(t, s)

				// Not due yet: nothing changes, nothing is audited.
				clock.Advance(tc.advance - 2*time.Minute)
				res, err := s.RunNow(ctx, tc.job)
				if err != nil || res.Items != 0 {
					t.Fatalf("early run: %d items, %v", res.Items, err)
				}
				if md, _ := svc.DescribeKey(ctx, key.KeyID); md.PrimaryVersion != 1 || md.KeyState == kms.KeyStateDestroyed {
					t.Fatalf("early run changed the key: %+v", md)
				}

				clock.Advance(2 * time.Minute)
				res, err = s.RunNow(ctx, tc.job)
				if err != nil || res.Items != 1 || res.Job != tc.job {
					t.Fatalf("due run: %+v, %v", res, err)
				}
				tc.check(t, f)

				// Idempotent: a second run finds nothing to do.
				if res, err := s.RunNow(ctx, tc.job); err != nil || res.Items != 0 {
					t.Fatalf("second run: %d items, %v", res.Items, err)
				}

				got := sink.results()
				if len(got) != 1 || got[0].Job != tc.job || got[0].Items != 1 || got[0].Err != nil {
					t.Fatalf("audit hook calls: %+v, want one for %s with 1 item", got, tc.job)
				}
				if v := metric(t, reg, "kms_jobs_runs_total", tc.job); v != 3 {
					t.Fatalf("runs_total %v, want 3", v)
				}
				if v := metric(t, reg, "kms_jobs_items_total", tc.job); v != 1 {
					t.Fatalf("items_total %v, want 1", v)
				}
				if v := metric(t, reg, "kms_jobs_failures_total", tc.job); v != 0 {
					t.Fatalf("failures_total %v, want 0", v)
				}
				if v := metric(t, reg, "kms_jobs_last_success_timestamp_seconds", tc.job); v < float64(time.Now().Add(-time.Minute).Unix()) {
					t.Fatalf("last success %v is stale", v)
				}
			})
		})
	}
}

func hsmObjects(t *testing.T, b *devhsm.Backend) []string {
	t.Helper()
	ids, err := b.ListKeys(context.Background(), kms.HSMObjectPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestCatchUpAtStart: a key already past its deletion window when the
// scheduler starts is destroyed by the start-up run, without waiting for
// the first tick (schedules of an hour here).
func TestCatchUpAtStart(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		svc, clock, _ := newKMS(t, db)
		key, err := svc.CreateKey(ctx, kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ScheduleKeyDeletion(ctx, kms.ScheduleKeyDeletionInput{KeyID: key.KeyID, PendingWindowDays: 7}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(8 * 24 * time.Hour)
		sink := &auditSink{}
		s, err := jobs.New(jobs.Config{DestroySchedule: "@hourly", RotateSchedule: "@hourly", OrphanSchedule: "@hourly", Audit: sink.hook}, svc)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		defer stop(t, s)
		waitFor(t, 10*time.Second, "the catch-up run to destroy the key", func() bool {
			md, err := svc.DescribeKey(ctx, key.KeyID)
			return err == nil && md.KeyState == kms.KeyStateDestroyed
		})
		waitFor(t, 5*time.Second, "the audit hook", func() bool { return len(sink.results()) == 1 })
	})
}

// TestAuditFailureFailsTheRun: the key change stands, but the run is
// reported and counted as failed, wrapping ErrAudit.
func TestAuditFailureFailsTheRun(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		svc, clock, _ := newKMS(t, db)
		key, err := svc.CreateKey(ctx, kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ScheduleKeyDeletion(ctx, kms.ScheduleKeyDeletionInput{KeyID: key.KeyID, PendingWindowDays: 7}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(8 * 24 * time.Hour)
		reg := prometheus.NewRegistry()
		sink := &auditSink{err: errors.New("audit store down")}
		s, err := jobs.New(jobs.Config{Registry: reg, Audit: sink.hook}, svc)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.RunNow(ctx, jobs.JobDestroyDueKeys)
		if !errors.Is(err, jobs.ErrAudit) || res.Items != 1 {
			t.Fatalf("run: %+v, %v; want 1 item and ErrAudit", res, err)
		}
		if v := metric(t, reg, "kms_jobs_failures_total", jobs.JobDestroyDueKeys); v != 1 {
			t.Fatalf("failures_total %v, want 1", v)
		}
	})
}
