package dkcache

import "errors"

// ErrInvalidConfig is returned by the constructors for out-of-range limits.
var ErrInvalidConfig = errors.New("dkcache: invalid config")
