package store

import "errors"

var (
	// ErrNotFound reports a missing row.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate reports a unique-constraint violation (alias name, key
	// id, key version).
	ErrDuplicate = errors.New("store: duplicate")
	// ErrConflict reports a failed compare-and-swap: the row changed since
	// it was read (another replica or goroutine won).
	ErrConflict = errors.New("store: concurrent modification")
)
