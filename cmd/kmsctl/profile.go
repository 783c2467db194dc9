package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Profile is one named set of connection settings.
type Profile struct {
	Endpoint        string `json:"endpoint"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Region          string `json:"region,omitempty"`
}

// credentialsFile is the JSON document at the credentials path.
type credentialsFile struct {
	Profiles map[string]Profile `json:"profiles"`
}

const defaultEndpoint = "http://127.0.0.1:8400"

// credentialsPath returns where profiles live.
func credentialsPath(getenv func(string) string) (string, error) {
	if p := getenv("KMS_CREDENTIALS_FILE"); p != "" {
		return p, nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "kmsgo", "credentials"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		home = h
	}
	return filepath.Join(home, ".config", "kmsgo", "credentials"), nil
}

// loadProfiles reads the credentials file; a missing file is empty.
func loadProfiles(path string) (credentialsFile, error) {
	cf := credentialsFile{Profiles: map[string]Profile{}}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return cf, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return cf, fmt.Errorf("%s: %w", path, errInsecureCredentials)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cf, err
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		return cf, fmt.Errorf("%s: %w", path, err)
	}
	if cf.Profiles == nil {
		cf.Profiles = map[string]Profile{}
	}
	return cf, nil
}

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

func (cf credentialsFile) names() []string {
	out := make([]string, 0, len(cf.Profiles))
	for n := range cf.Profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
