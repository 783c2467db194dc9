package nacos

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SDK layout under ClientConfig.CacheDir (clients/cache/const.go and
// config_client.NewConfigClient, which appends "config").
const (
	sdkEncryptedDataKeyDir = "encrypted-data-key"
	sdkFailoverSuffix      = "_failover"
)

// prepareDirs creates Dir (0700 when it is new) and the SDK's cache and log
// directories with mode 0700 before the SDK can create them 0777.
func (s *Source) prepareDirs() error {
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("%w: Dir: %v", ErrConfig, err)
	}
	for _, d := range []string{s.cacheDir, s.configDir, filepath.Join(s.configDir, sdkEncryptedDataKeyDir), s.logDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	return nil
}

// tighten narrows what the SDK wrote (0666/0777 minus umask) to 0600/0700.
// The directories are 0700 from the start, so nothing was reachable by
// other users in between.
func (s *Source) tighten() {
	for _, root := range []string{s.cacheDir, s.logDir} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if info, err := d.Info(); err == nil && info.Mode().Perm() != want {
				_ = os.Chmod(p, want)
			}
			return nil
		})
	}
}

func (s *Source) cacheKey(dataID string) string {
	return dataID + "@@" + s.cfg.Group + "@@" + s.cfg.Namespace
}

func (s *Source) failoverPath(dataID string) string {
	return filepath.Join(s.configDir, s.cacheKey(dataID)+sdkFailoverSuffix)
}

// checkFailover refuses any _failover file for the configured dataIds.
func (s *Source) checkFailover() error {
	if s.cfg.AllowFailover {
		return nil
	}
	for _, id := range s.cfg.DataIDs {
		for _, p := range []string{s.failoverPath(id), filepath.Join(s.configDir, sdkEncryptedDataKeyDir, s.cacheKey(id)+sdkFailoverSuffix)} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%w: dataId %q has %s", ErrFailoverFile, id, filepath.Base(p))
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %v", ErrConfig, err)
			}
		}
	}
	return nil
}
