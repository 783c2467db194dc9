package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// Profile is one named set of connection settings (kmsclient's, which
// also loads them).
type Profile = kmsclient.Profile

// credentialsFile is the JSON document at the credentials path.
type credentialsFile = kmsclient.ProfilesFile

const defaultEndpoint = kmsclient.DefaultEndpoint

// credentialsPath returns where profiles live.
func credentialsPath(getenv func(string) string) (string, error) {
	return kmsclient.DefaultProfilesPath(getenv)
}

// loadProfiles reads the credentials file; a missing file is empty.
func loadProfiles(path string) (credentialsFile, error) { return kmsclient.LoadProfiles(path) }

// saveProfiles writes the credentials file atomically with mode 0600.
func saveProfiles(path string, cf credentialsFile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func profileNames(cf credentialsFile) []string {
	out := make([]string, 0, len(cf.Profiles))
	for n := range cf.Profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
