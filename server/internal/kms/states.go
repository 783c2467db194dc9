package kms

// Operation names a service operation for the key-state table.
type Operation string

// Operations subject to the key-state table.
const (
	OpDescribeKey                     Operation = "DescribeKey"
	OpListKeyVersions                 Operation = "ListKeyVersions"
	OpUpdateKey                       Operation = "UpdateKey"
	OpEnableKey                       Operation = "EnableKey"
	OpDisableKey                      Operation = "DisableKey"
	OpScheduleKeyDeletion             Operation = "ScheduleKeyDeletion"
	OpCancelKeyDeletion               Operation = "CancelKeyDeletion"
	OpRotateKey                       Operation = "RotateKey"
	OpGetRotationPolicy               Operation = "GetRotationPolicy"
	OpSetRotationPolicy               Operation = "SetRotationPolicy"
	OpCreateAlias                     Operation = "CreateAlias" // also UpdateAlias, on the target key
	OpTagKey                          Operation = "TagKey"      // also UntagKey
	OpListTags                        Operation = "ListTags"
	OpGetParametersForImport          Operation = "GetParametersForImport"
	OpImportKeyMaterial               Operation = "ImportKeyMaterial"
	OpEncrypt                         Operation = "Encrypt"
	OpDecrypt                         Operation = "Decrypt"
	OpGenerateDataKey                 Operation = "GenerateDataKey"
	OpGenerateDataKeyWithoutPlaintext Operation = "GenerateDataKeyWithoutPlaintext"
	OpReEncrypt                       Operation = "ReEncrypt" // Decrypt rules on the source, Encrypt rules on the destination
	OpEnableKeyVersion                Operation = "EnableKeyVersion"
	OpDisableKeyVersion               Operation = "DisableKeyVersion"
)

// allowed is the key-state table of the package documentation. Order of the
// booleans: Enabled, Disabled, PendingDeletion, PendingImport, Destroyed.
var allowed = map[Operation][5]bool{
	OpDescribeKey:                     {true, true, true, true, true},
	OpListKeyVersions:                 {true, true, true, true, true},
	OpGetRotationPolicy:               {true, true, true, true, true},
	OpListTags:                        {true, true, true, true, true},
	OpUpdateKey:                       {true, true, false, true, false},
	OpEnableKey:                       {true, true, false, false, false},
	OpDisableKey:                      {true, true, false, false, false},
	OpScheduleKeyDeletion:             {true, true, false, true, false},
	OpCancelKeyDeletion:               {false, false, true, false, false},
	OpRotateKey:                       {true, false, false, false, false},
	OpSetRotationPolicy:               {true, true, false, false, false},
	OpCreateAlias:                     {true, true, false, true, false},
	OpTagKey:                          {true, true, false, true, false},
	OpGetParametersForImport:          {false, false, false, true, false},
	OpImportKeyMaterial:               {false, false, false, true, false},
	OpEncrypt:                         {true, false, false, false, false},
	OpDecrypt:                         {true, false, false, false, false},
	OpGenerateDataKey:                 {true, false, false, false, false},
	OpGenerateDataKeyWithoutPlaintext: {true, false, false, false, false},
	OpReEncrypt:                       {true, false, false, false, false},
	OpEnableKeyVersion:                {true, true, false, false, false},
	OpDisableKeyVersion:               {true, true, false, false, false},
}

func stateIndex(s KeyState) int {
	switch s {
	case KeyStateEnabled:
		return 0
	case KeyStateDisabled:
		return 1
	case KeyStatePendingDeletion:
		return 2
	case KeyStatePendingImport:
		return 3
	case KeyStateDestroyed:
		return 4
	}
	return -1
}

// Allowed reports whether op may run on a key in state s (the table in the
// package documentation). Unknown operations and states are refused.
func Allowed(op Operation, s KeyState) bool {
	row, ok := allowed[op]
	i := stateIndex(s)
	return ok && i >= 0 && row[i]
}

func checkState(op Operation, s KeyState) error {
	if !Allowed(op, s) {
		return &stateError{op: op, state: s}
	}
	return nil
}

type stateError struct {
	op    Operation
	state KeyState
}

func (e *stateError) Error() string {
	return ErrInvalidKeyState.Error() + ": " + string(e.op) + " on a " + string(e.state) + " key"
}
func (e *stateError) Is(target error) bool { return target == ErrInvalidKeyState }
