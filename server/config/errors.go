package config

import "errors"

var (
	// ErrInvalid reports a configuration value that cannot work.
	ErrInvalid = errors.New("config: invalid")
	// ErrInsecureFile reports a secret file readable by group or others.
	ErrInsecureFile = errors.New("config: secret file must not be accessible by group or others (chmod 600)")
)
