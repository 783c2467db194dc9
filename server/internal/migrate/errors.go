package migrate

import "errors"

// ErrDuplicateStep reports two steps with the same ID in one Apply call.
var ErrDuplicateStep = errors.New("migrate: duplicate step id")
