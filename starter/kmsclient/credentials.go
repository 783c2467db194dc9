package kmsclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Credentials loading, written once for every program that talks to kmsd
// (kmsctl, kmsload, the examples, your service). Secrets come from the
// environment or from 0600 files, never from flags.

// DefaultEndpoint is where `make run` serves kmsd.
const DefaultEndpoint = "http://127.0.0.1:8400"

// Environment variables read by ConfigFromEnv.
const (
	EnvEndpoint        = "KMS_ENDPOINT"
	EnvAccessKeyID     = "KMS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "KMS_SECRET_ACCESS_KEY"
	EnvRegion          = "KMS_REGION"
	EnvProfile         = "KMS_PROFILE"
	EnvCredentialsFile = "KMS_CREDENTIALS_FILE"
)

// ErrNoCredentials means no access key and secret were found.
var ErrNoCredentials = errors.New("kmsclient: no credentials: set KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY, or use a credentials file")

// ErrInsecureCredentials refuses a credentials file readable by group or
// others (it holds a secret: chmod 600).
var ErrInsecureCredentials = errors.New("kmsclient: credentials file must not be readable by group or others (chmod 600)")

// maxCredentialsFile bounds a credentials file.
const maxCredentialsFile = 64 << 10

// Profile is one named set of connection settings, as in a profiles file
// and in the admin-credentials.json kmsd writes on first start.
type Profile struct {
	Endpoint        string `json:"endpoint,omitempty"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Region          string `json:"region,omitempty"`
}

// String never shows the secret.
func (p Profile) String() string {
	return fmt.Sprintf("Profile{endpoint:%q access_key_id:%q region:%q}", p.Endpoint, p.AccessKeyID, p.Region)
}

// Config returns a client Config for p (DefaultEndpoint when p has none).
func (p Profile) Config() Config {
	c := Config{Endpoint: p.Endpoint, AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey, Region: p.Region}
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	return c
}

// ProfilesFile is the JSON document of a profiles file.
type ProfilesFile struct {
	Profiles map[string]Profile `json:"profiles"`
}

// Overlay sets the fields of p that the environment names (KMS_ENDPOINT,
// KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY, KMS_REGION). getenv nil means
// os.Getenv.
func (p *Profile) Overlay(getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, o := range []struct {
		dst *string
		env string
	}{{&p.Endpoint, EnvEndpoint}, {&p.AccessKeyID, EnvAccessKeyID}, {&p.SecretAccessKey, EnvSecretAccessKey}, {&p.Region, EnvRegion}} {
		if v := getenv(o.env); v != "" {
			*o.dst = v
		}
	}
}

// ConfigFromEnv builds a Config from KMS_ENDPOINT (default
// DefaultEndpoint), KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY and
// KMS_REGION. getenv nil means os.Getenv. Without an access key and secret
// it fails with ErrNoCredentials.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var p Profile
	p.Overlay(getenv)
	if p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return Config{}, ErrNoCredentials
	}
	return p.Config(), nil
}

// LoadCredentialsFile reads one Profile from a JSON file such as the
// admin-credentials.json kmsd writes. The file must be a regular file not
// readable by group or others. Errors never quote the content.
func LoadCredentialsFile(path string) (Profile, error) {
	raw, err := readSecretFile(path, false)
	if err != nil {
		return Profile{}, err
	}
	defer clear(raw)
	p, err := ParseCredentials(raw)
	if err != nil {
		return Profile{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParseCredentials decodes one Profile from JSON (the format of
// admin-credentials.json). An access key and secret are required. Errors
// never quote the input (it holds a secret).
func ParseCredentials(raw []byte) (Profile, error) {
	if len(raw) > maxCredentialsFile {
		return Profile{}, fmt.Errorf("%w: credentials over %d bytes", ErrInvalidConfig, maxCredentialsFile)
	}
	var p Profile
	if err := json.Unmarshal(raw, &p); err != nil {
		return Profile{}, fmt.Errorf("%w: not a JSON object with access_key_id and secret_access_key", ErrInvalidConfig)
	}
	if p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return Profile{}, fmt.Errorf("%w: access_key_id and secret_access_key are required", ErrInvalidConfig)
	}
	return p, nil
}

// DefaultProfilesPath is KMS_CREDENTIALS_FILE, else
// $XDG_CONFIG_HOME/kmsgo/credentials, else ~/.config/kmsgo/credentials.
// getenv nil means os.Getenv.
func DefaultProfilesPath(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv(EnvCredentialsFile); p != "" {
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

// LoadProfiles reads a profiles file; a missing file is empty.
func LoadProfiles(path string) (ProfilesFile, error) {
	pf := ProfilesFile{Profiles: map[string]Profile{}}
	raw, err := readSecretFile(path, true)
	if err != nil || raw == nil {
		return pf, err
	}
	defer clear(raw)
	if err := json.Unmarshal(raw, &pf); err != nil {
		return pf, fmt.Errorf("%w: %s is not a profiles file", ErrInvalidConfig, path)
	}
	if pf.Profiles == nil {
		pf.Profiles = map[string]Profile{}
	}
	return pf, nil
}

// LoadProfile returns profile name ("" means KMS_PROFILE, else "default")
// from the profiles file at path ("" means DefaultProfilesPath), with the
// environment overlaid (Profile.Overlay). A named profile that is missing
// is an error; a missing default profile is not, when the environment
// supplies the credentials. getenv nil means os.Getenv.
func LoadProfile(path, name string, getenv func(string) string) (Profile, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	explicit := name != "" || getenv(EnvProfile) != ""
	if name == "" {
		name = getenv(EnvProfile)
	}
	if name == "" {
		name = "default"
	}
	if path == "" {
		var err error
		if path, err = DefaultProfilesPath(getenv); err != nil {
			return Profile{}, err
		}
	}
	pf, err := LoadProfiles(path)
	if err != nil {
		return Profile{}, err
	}
	p, found := pf.Profiles[name]
	if !found && explicit {
		return Profile{}, fmt.Errorf("%w: profile %q not found in %s", ErrInvalidConfig, name, path)
	}
	p.Overlay(getenv)
	if p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return p, ErrNoCredentials
	}
	return p, nil
}

// readSecretFile reads a small private file; nil, nil when it does not
// exist and missingOK.
func readSecretFile(path string, missingOK bool) ([]byte, error) {
	f, err := os.Open(path)
	if missingOK && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalidConfig, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w", path, ErrInsecureCredentials)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxCredentialsFile {
		clear(raw)
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrInvalidConfig, path, maxCredentialsFile)
	}
	return raw, nil
}
