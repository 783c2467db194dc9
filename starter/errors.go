package starter

import (
	"errors"
	"fmt"
)

// Sentinel errors. Start wraps them in a *StartError that names the
// component and the config path.
var (
	// ErrConfig: the starter's YAML file or a KMSGO_* variable is invalid
	// (unknown key, wrong type, missing required value).
	ErrConfig = errors.New("starter: invalid configuration")
	// ErrCredentials: a credential is missing, was given where credentials
	// are not accepted (in the YAML file), or its file is not private.
	ErrCredentials = errors.New("starter: credentials")
	// ErrNotLinked: the configuration names a config source or database
	// driver whose package is not imported (blank import it).
	ErrNotLinked = errors.New("starter: component not linked")
	// ErrDatabase: the database could not be opened or pinged.
	ErrDatabase = errors.New("starter: database")
	// ErrClosed: the App was closed.
	ErrClosed = errors.New("starter: closed")
)

// StartError is a start-up failure: the component that failed (kms,
// config, database) and the config path that configures it.
type StartError struct {
	Component string
	Path      string
	Err       error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("starter: start %s (%s): %v", e.Component, e.Path, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }
