package devhsm

import "errors"

var (
	// ErrInsecurePermissions means root.key, the keys directory or a key file
	// is accessible by group or others (looser than 0600 for files, 0700 for
	// the directory). Open refuses to start.
	ErrInsecurePermissions = errors.New("devhsm: insecure file permissions")

	// ErrCorrupt means the key store on disk is damaged: root.key has the
	// wrong size, or a key file is not a regular file, has a bad name or does
	// not open under the root key. Open refuses to start.
	ErrCorrupt = errors.New("devhsm: key store corrupt")
)
