package kms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/store"
)

// versionInUseError is ErrVersionInUse with what the caller needs to act.
type versionInUseError struct {
	keyID    string
	version  int64
	lastUsed time.Time
	quiet    time.Duration
}

func (e *versionInUseError) Error() string {
	return fmt.Sprintf("%s: version %d of key %s was last used for decryption at %s, within the retirement quiet period of %s; "+
		"renew the data still encrypted under it (re-encrypt it under the primary version) and retry after %s, "+
		"or force the retirement (\"force\": true; kmsctl keys disable-version --force)",
		ErrVersionInUse.Error(), e.version, e.keyID, e.lastUsed.UTC().Format(time.RFC3339), e.quiet,
		e.lastUsed.Add(e.quiet).UTC().Format(time.RFC3339))
}
func (e *versionInUseError) Is(target error) bool { return target == ErrVersionInUse }

// versionInfo describes v of k with its stored usage plus this replica's
// unflushed usage, which counts as a use now (it is at most one flush
// interval old).
func (s *Service) versionInfo(k *store.Key, v *store.KeyVersion) KeyVersionInfo {
	n := s.usage.pending(v.KeyID, v.Version)
	info := KeyVersionInfo{Version: int(v.Version), State: v.State, Primary: v.Version == k.PrimaryVersion,
		CreationDate: v.CreatedAt.UTC(), DecryptCount: v.DecryptCount + n}
	var last time.Time
	if v.LastUsedAt != nil {
		last = v.LastUsedAt.UTC()
	}
	if n > 0 {
		last = s.now()
	}
	if !last.IsZero() {
		info.LastUsedAt = &last
	}
	return info
}

// DisableKeyVersion retires a key version for decryption: ciphertexts under
// it then fail with ErrKeyVersionDisabled, on other replicas within
// Config.MetadataTTL. Its material is kept (EnableKeyVersion undoes the
// retirement); only destroying the key destroys it. The primary version
// cannot be disabled (ErrInvalidKeyState: rotate first). Unless in.Force,
// a version used for decryption within Config.RetirementQuietPeriod is
// refused with ErrVersionInUse. Disabling a disabled version changes
// nothing.
func (s *Service) DisableKeyVersion(ctx context.Context, in DisableKeyVersionInput) (*KeyVersionInfo, error) {
	if !in.Force && s.quiet > 0 {
		// This replica's uses go to the database first, so that another
		// replica checking later sees them, and no flush runs during the
		// check, so every use is either in the database or still counted
		// in memory (versionInfo adds those). A failed flush leaves them
		// in memory.
		s.usage.flushMu.Lock()
		defer s.usage.flushMu.Unlock()
		_ = s.flushLocked(ctx)
	}
	return s.setVersionState(ctx, in.KeyID, in.Version, OpDisableKeyVersion, func(k *store.Key, v *store.KeyVersion, now time.Time) (bool, error) {
		if v.State == store.VersionDisabled {
			return false, nil
		}
		if v.Version == k.PrimaryVersion {
			return false, fmt.Errorf("%w: version %d is the primary version of key %s, which encrypts all new data: "+
				"rotate the key first, renew the data encrypted under version %d, then disable it", ErrInvalidKeyState, v.Version, k.ID, v.Version)
		}
		if in.Force || s.quiet <= 0 {
			return true, nil
		}
		info := s.versionInfo(k, v)
		if info.LastUsedAt != nil && now.Sub(*info.LastUsedAt) < s.quiet {
			return false, &versionInUseError{keyID: k.ID, version: v.Version, lastUsed: *info.LastUsedAt, quiet: s.quiet}
		}
		return true, nil
	}, store.VersionEnabled, store.VersionDisabled)
}

// EnableKeyVersion undoes DisableKeyVersion: the version decrypts again (on
// other replicas within Config.MetadataTTL). Enabling an enabled version
// changes nothing.
func (s *Service) EnableKeyVersion(ctx context.Context, keyID string, version int) (*KeyVersionInfo, error) {
	return s.setVersionState(ctx, keyID, version, OpEnableKeyVersion, func(_ *store.Key, v *store.KeyVersion, _ time.Time) (bool, error) {
		return v.State == store.VersionDisabled, nil
	}, store.VersionDisabled, store.VersionEnabled)
}

// setVersionState reads the key and version fresh, lets check decide
// whether to move the version from state from to state to, and applies the
// change with compare-and-swap on the key's revision, retrying a few times
// when another writer got there first.
func (s *Service) setVersionState(ctx context.Context, keyID string, version int, op Operation,
	check func(k *store.Key, v *store.KeyVersion, now time.Time) (bool, error), from, to store.VersionState) (*KeyVersionInfo, error) {
	if version < 1 {
		return nil, validationf("version must be a positive integer")
	}
	id, err := s.resolve(ctx, keyID, false)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		k, vs, err := s.st.LoadKey(ctx, id)
		if err != nil {
			return nil, storeErr(err)
		}
		if err := checkState(op, k.State); err != nil {
			return nil, err
		}
		var v *store.KeyVersion
		for i := range vs {
			if vs[i].Version == int64(version) {
				v = &vs[i]
			}
		}
		if v == nil {
			return nil, fmt.Errorf("%w: key %s has no version %d", ErrNotFound, id, version)
		}
		if v.State == store.VersionDestroyed {
			return nil, fmt.Errorf("%w: version %d of key %s is destroyed", ErrInvalidKeyState, version, id)
		}
		now := s.now()
		change, err := check(&k, v, now)
		if err != nil {
			return nil, err
		}
		if change {
			err = s.st.SetVersionState(ctx, id, v.Version, from, to, k.Revision, now)
			if errors.Is(err, store.ErrConflict) && attempt < 5 {
				continue
			}
			if err != nil {
				return nil, storeErr(err)
			}
			s.invalidate(id)
			v.State = to
		}
		info := s.versionInfo(&k, v)
		return &info, nil
	}
}
