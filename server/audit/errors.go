package audit

import "errors"

var (
	// ErrUnavailable wraps every failure to make a record durable. The
	// request that produced the record must fail (fail closed).
	ErrUnavailable = errors.New("audit: record not written")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: logger closed")
	// ErrInvalidRecord reports a record that cannot be stored as given
	// (missing action, bad result, over-long or non-UTF-8 field, ...).
	ErrInvalidRecord = errors.New("audit: invalid record")
	// ErrInvalidConfig reports a Logger configuration that cannot work
	// (empty or over-long ReplicaID, chain key shorter than 32 bytes).
	ErrInvalidConfig = errors.New("audit: invalid config")
	// ErrBadHead means the newest stored record of this replica's chain does
	// not verify under the configured chain key: the key is wrong or the
	// tail was tampered with. The Logger refuses to extend such a chain.
	ErrBadHead = errors.New("audit: chain head does not verify")
	// ErrBadAnchor reports an anchor file or anchor that cannot be parsed or
	// whose signature does not verify.
	ErrBadAnchor = errors.New("audit: bad anchor")
	// ErrBelowAnchor means this replica's chain in the database ends below
	// (or differs from) its last anchor: records were removed or rewritten.
	// The Logger refuses to resume such a chain, which would reuse the
	// removed sequence numbers.
	ErrBelowAnchor = errors.New("audit: chain is below its last anchor")
	// ErrChainBroken means a range to export or a segment does not verify.
	ErrChainBroken = errors.New("audit: chain does not verify")
	// ErrBadSegment reports a segment file that cannot be parsed.
	ErrBadSegment = errors.New("audit: bad segment file")
	// ErrNothingToExport means Export found no record after the given seq.
	ErrNothingToExport = errors.New("audit: nothing to export")
	// ErrInvalidCursor reports a List cursor that was not produced by List.
	ErrInvalidCursor = errors.New("audit: invalid cursor")
)
