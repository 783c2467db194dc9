package kms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// TestMaintenanceReportsKeyChanges: DestroyDueKeysFunc and
// RotateDueKeysFunc report every key they change with its old and new
// state or primary version, and a report that fails stops the operation
// before it changes another key (fail closed); the next run does the rest.
func TestMaintenanceReportsKeyChanges(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(e *env, id string)
		advance time.Duration
		run     func(e *env, report kms.ChangeFunc) (int, error)
		want    func(id string) kms.KeyChange
		changed func(md *kms.KeyMetadata) bool
	}{
		{"rotate", func(e *env, id string) {
			if _, err := e.svc.SetRotationPolicy(e.ctx, kms.SetRotationPolicyInput{KeyID: id, Enabled: true, PeriodDays: 90}); err != nil {
				e.t.Fatal(err)
			}
		}, 91 * 24 * time.Hour,
			func(e *env, report kms.ChangeFunc) (int, error) { return e.svc.RotateDueKeysFunc(e.ctx, report) },
			func(id string) kms.KeyChange {
				return kms.KeyChange{KeyID: id, OldState: kms.KeyStateEnabled, NewState: kms.KeyStateEnabled, OldVersion: 1, NewVersion: 2}
			},
			func(md *kms.KeyMetadata) bool { return md.PrimaryVersion == 2 }},
		{"destroy", func(e *env, id string) {
			if _, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: id, PendingWindowDays: 7}); err != nil {
				e.t.Fatal(err)
			}
		}, 8 * 24 * time.Hour,
			func(e *env, report kms.ChangeFunc) (int, error) { return e.svc.DestroyDueKeysFunc(e.ctx, report) },
			func(id string) kms.KeyChange {
				return kms.KeyChange{KeyID: id, OldState: kms.KeyStatePendingDeletion, NewState: kms.KeyStateDestroyed, OldVersion: 1, NewVersion: 1}
			},
			func(md *kms.KeyMetadata) bool { return md.KeyState == kms.KeyStateDestroyed }},
	}
	for _, tc := range tests {
		for _, failing := range []bool{false, true} {
			name := tc.name
			if failing {
				name += "/report fails"
			}
			t.Run(name, func(t *testing.T) {
				forEach(t, func(t *testing.T, e *env) {
					ids := []string{e.createKey(kms.CreateKeyInput{}).KeyID, e.createKey(kms.CreateKeyInput{}).KeyID}
					for _, id := range ids {
						tc.prepare(e, id)
					}
					e.clock.Advance(tc.advance)
					var got []kms.KeyChange
					auditDown := errors.New("audit down")
					n, err := tc.run(e, func(_ context.Context, c kms.KeyChange) error {
						got = append(got, c)
						if failing {
							return auditDown
						}
						return nil
					})
					changed := 0
					for _, id := range ids {
						md, derr := e.svc.DescribeKey(e.ctx, id)
						if derr != nil {
							t.Fatal(derr)
						}
						if tc.changed(md) {
							changed++
						}
					}
					if !failing {
						if err != nil || n != 2 || len(got) != 2 || changed != 2 {
							t.Fatalf("n %d, err %v, reported %+v, changed %d", n, err, got, changed)
						}
						for i, c := range got {
							if c != tc.want(c.KeyID) || (c.KeyID != ids[0] && c.KeyID != ids[1]) || (i == 1 && c.KeyID == got[0].KeyID) {
								t.Fatalf("change %d: %+v", i, c)
							}
						}
						return
					}
					if !errors.Is(err, auditDown) || n != 1 || len(got) != 1 || changed != 1 || got[0] != tc.want(got[0].KeyID) {
						t.Fatalf("fail closed: n %d, err %v, reported %+v, changed %d (want one key changed)", n, err, got, changed)
					}
					if n, err := tc.run(e, nil); err != nil || n != 1 {
						t.Fatalf("the next run: %d, %v; want the other key", n, err)
					}
				})
			})
		}
	}
}
