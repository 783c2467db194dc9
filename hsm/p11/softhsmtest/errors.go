package softhsmtest

import "errors"

// ErrNotInstalled means the SoftHSM2 module or softhsm2-util was not found.
var ErrNotInstalled = errors.New(InstallHint)
