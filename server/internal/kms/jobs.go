package kms

import (
	"context"
	"errors"
	"fmt"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// DestroyDueKeys destroys every PendingDeletion key whose deletion date has
// passed: the key becomes Destroyed (compare-and-swap, so a concurrent
// CancelKeyDeletion either wins completely or loses), then each version's
// material is destroyed (HSM object removed, wrapped material erased). Work
// left by an interrupted run is finished by the next one. It returns how
// many keys it moved to Destroyed. Safe to run on several replicas.
func (s *Service) DestroyDueKeys(ctx context.Context) (int, error) {
	return s.DestroyDueKeysFunc(ctx, nil)
}

// KeyChange is one change a maintenance operation made to a key: its
// state (DestroyDueKeys: PendingDeletion to Destroyed) or its primary
// version (RotateDueKeys). The fields that did not change are equal.
type KeyChange struct {
	KeyID                  string
	OldState, NewState     KeyState
	OldVersion, NewVersion int64 // primary versions
}

// ChangeFunc receives each KeyChange of a maintenance operation right
// after it is committed (to audit it). An error stops the operation
// before it changes another key (fail closed) and is returned by it.
type ChangeFunc func(ctx context.Context, c KeyChange) error

// DestroyDueKeysFunc is DestroyDueKeys that calls report (when not nil)
// for each key it destroys, once the key and its aliases are gone.
func (s *Service) DestroyDueKeysFunc(ctx context.Context, report ChangeFunc) (int, error) {
	now := s.now()
	due, err := s.st.DueForDeletion(ctx, now)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, k := range due {
		err := s.st.UpdateKey(ctx, k.ID, k.Revision, map[string]any{"state": KeyStateDestroyed, "rotation_enabled": false, "next_rotation_at": nil}, now)
		s.invalidate(k.ID)
		s.material.purge(k.ID)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue // changed meanwhile (cancelled, or another replica did it)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		// As in AWS, a deleted key's aliases go with it, freeing the names.
		if err := s.st.DeleteAliasesOf(ctx, k.ID); err != nil {
			errs = append(errs, err)
		}
		s.mu.Lock()
		for name, a := range s.aliases {
			if a.keyID == k.ID {
				delete(s.aliases, name)
			}
		}
		s.mu.Unlock()
		if report != nil {
			if err := report(ctx, KeyChange{KeyID: k.ID, OldState: k.State, NewState: KeyStateDestroyed,
				OldVersion: k.PrimaryVersion, NewVersion: k.PrimaryVersion}); err != nil {
				// Fail closed: no further key changes. The versions of
				// the keys destroyed so far are destroyed by the next run.
				return n, errors.Join(append(errs, err)...)
			}
		}
	}
	vs, err := s.st.UndestroyedVersionsOfDestroyedKeys(ctx)
	if err != nil {
		return n, errors.Join(append(errs, err)...)
	}
	for _, v := range vs {
		if err := s.destroyVersion(ctx, v, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// RotateDueKeys rotates every Enabled key whose automatic rotation is due
// and returns how many it rotated. A key rotated concurrently by another
// replica is skipped, not rotated twice.
func (s *Service) RotateDueKeys(ctx context.Context) (int, error) {
	return s.RotateDueKeysFunc(ctx, nil)
}

// RotateDueKeysFunc is RotateDueKeys that calls report (when not nil) for
// each key it rotates, with the old and the new primary version.
func (s *Service) RotateDueKeysFunc(ctx context.Context, report ChangeFunc) (int, error) {
	due, err := s.st.DueForRotation(ctx, s.now())
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, k := range due {
		if k.Origin == OriginExternal {
			continue
		}
		rk, old, err := s.rotate(ctx, k.ID, true)
		switch {
		case err == nil:
			n++
			if report != nil {
				if err := report(ctx, KeyChange{KeyID: k.ID, OldState: rk.State, NewState: rk.State,
					OldVersion: old, NewVersion: rk.PrimaryVersion}); err != nil {
					return n, errors.Join(append(errs, err)...) // fail closed
				}
			}
		case errors.Is(err, ErrConcurrentUpdate), errors.Is(err, ErrInvalidKeyState), errors.Is(err, ErrNotFound):
		default:
			errs = append(errs, fmt.Errorf("rotate %s: %w", k.ID, err))
		}
	}
	return n, errors.Join(errs...)
}

// orphanBatch bounds the intent rows one CleanupOrphans run looks at.
const orphanBatch = 1000

// CleanupOrphans destroys HSM objects that this deployment recorded as
// about to be created (an intent row written before C_GenerateKey) and
// that were never committed, once their intent is older than
// Config.OrphanGrace: leftovers of creations, rotations or imports that
// failed after (perhaps) creating the object. It never looks at the
// token's other objects: key destruction never follows from the absence of
// a row, so objects of another deployment sharing the token are safe. It
// returns how many objects it destroyed.
func (s *Service) CleanupOrphans(ctx context.Context) (int, error) {
	intents, err := s.st.HSMIntentsBefore(ctx, s.clock().Add(-s.orphanGrace), orphanBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, in := range intents {
		used, err := s.st.HSMObjectInUse(ctx, in.ObjectID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if used || !ownObject(in.ObjectID, s.deployment) {
			// Committed after all (or not ours to touch): forget it.
			if err := s.st.DeleteHSMIntent(ctx, in.ObjectID); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		err = s.hsm.DestroyKey(ctx, in.ObjectID)
		switch {
		case err == nil:
			n++
		case errors.Is(err, hsm.ErrKeyNotFound):
			// Never created (the HSM failed before), or destroyed already.
		default:
			errs = append(errs, err)
			continue
		}
		if err := s.st.DeleteHSMIntent(ctx, in.ObjectID); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}
