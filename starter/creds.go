package starter

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretFile bounds what is read from a secret file.
const maxSecretFile = 64 << 10

// readPrivateFile reads a file that must not be readable or writable by
// group or others (mode 0600 or 0400). On Kubernetes, mount secrets with
// defaultMode 0400.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCredentials, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o; a credentials file must be 0600 or 0400", ErrCredentials, path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%w: %s is too large", ErrCredentials, path)
	}
	return b, nil
}

// readSecretFile returns the content of a private file without surrounding
// white space.
func readSecretFile(path string) (string, error) {
	b, err := readPrivateFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	clear(b)
	if s == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrCredentials, path)
	}
	return s, nil
}

// kmsCredentials is the JSON credentials file kmsd writes on first start.
type kmsCredentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Region          string `json:"region"`
	Endpoint        string `json:"endpoint"`
}

func readCredentialsFile(path string) (kmsCredentials, error) {
	b, err := readPrivateFile(path)
	if err != nil {
		return kmsCredentials{}, fmt.Errorf("kms.credentials_file: %w", err)
	}
	defer clear(b)
	var c kmsCredentials
	if err := json.Unmarshal(b, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
		// Never echo the content (or the JSON error, which may quote it).
		return kmsCredentials{}, fmt.Errorf("%w: kms.credentials_file: %s is not a kmsd credentials file (access_key_id, secret_access_key)", ErrCredentials, path)
	}
	return c, nil
}
