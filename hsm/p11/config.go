package p11

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
)

// Default values used when the corresponding Config field is zero.
const (
	DefaultAcquireTimeout = 2 * time.Second
)

// Config says which token to use and how. The PIN never comes from a flag
// default: read it with PINFromEnvOrFile.
type Config struct {
	// ModulePath is the PKCS#11 shared library, for example
	// /usr/lib/softhsm/libsofthsm2.so.
	ModulePath string
	// TokenLabel selects the slot whose token carries this label. Exactly
	// one token must match.
	TokenLabel string
	// PIN is the user PIN (CKU_USER).
	PIN string
	// PoolSize bounds the sessions in flight at once. Default runtime.NumCPU().
	PoolSize int
	// AcquireTimeout is how long a call waits for a free session before it
	// fails with hsm.ErrBusy. Default DefaultAcquireTimeout.
	AcquireTimeout time.Duration
	// RootKeyID is the id of the root key used by WrapKey/UnwrapKey.
	// Default hsm.RootKeyID.
	RootKeyID string
	// CreateRootKey lets Open generate an AES-256 root key when the token
	// has none. Without it a missing root key fails Open with
	// ErrRootKeyMissing.
	CreateRootKey bool
	// Deployment, when set, makes Open call BindDeployment: the root key is
	// recorded as this deployment's, and a root key of another deployment
	// is refused unless AllowForeignRootKey is set. kmsd leaves it empty
	// and binds once its database told it the deployment id.
	Deployment          string
	AllowForeignRootKey bool
	// Logger receives fault and recovery events (never key material).
	// Default: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.ModulePath == "" || c.TokenLabel == "" {
		return c, fmt.Errorf("%w: ModulePath and TokenLabel are required", ErrConfig)
	}
	if c.PIN == "" {
		return c, fmt.Errorf("%w: %w", ErrConfig, ErrNoPIN)
	}
	if c.PoolSize < 0 || c.AcquireTimeout < 0 {
		return c, fmt.Errorf("%w: negative PoolSize or AcquireTimeout", ErrConfig)
	}
	if c.PoolSize == 0 {
		c.PoolSize = runtime.NumCPU()
	}
	if c.AcquireTimeout == 0 {
		c.AcquireTimeout = DefaultAcquireTimeout
	}
	if c.RootKeyID == "" {
		c.RootKeyID = hsm.RootKeyID
	}
	if err := checkID(c.RootKeyID); err != nil {
		return c, fmt.Errorf("%w: RootKeyID: %w", ErrConfig, err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// PINFromEnvOrFile returns the PIN from the environment variable envName if
// it is set and non-empty, else from file (trailing newline removed). The
// file must not be readable by group or others. Either argument may be
// empty to skip that source. It fails with ErrNoPIN when neither yields a
// PIN.
func PINFromEnvOrFile(envName, file string) (string, error) {
	if envName != "" {
		if pin := os.Getenv(envName); pin != "" {
			return pin, nil
		}
	}
	if file == "" {
		return "", ErrNoPIN
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoPIN, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoPIN, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", ErrNoPIN, file)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %v", ErrPINFileMode, file, st.Mode().Perm())
	}
	const maxPINFile = 4096
	buf, err := io.ReadAll(io.LimitReader(f, maxPINFile+1))
	defer hsm.Zero(buf)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoPIN, err)
	}
	if len(buf) > maxPINFile {
		return "", fmt.Errorf("%w: %s is larger than %d bytes", ErrNoPIN, file, maxPINFile)
	}
	pin := parsePIN(buf)
	if pin == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrNoPIN, file)
	}
	return pin, nil
}

// parsePIN removes leading and trailing blanks and line endings from the
// contents of a PIN file. Inner characters are kept as they are.
func parsePIN(b []byte) string {
	return strings.Trim(string(b), " \t\r\n")
}
