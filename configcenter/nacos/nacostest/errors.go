package nacostest

import "errors"

// Sentinel errors returned by the test server's helpers.
var (
	// ErrNoPorts means no free HTTP/gRPC port pair (gRPC = HTTP + 1000)
	// could be found on 127.0.0.1.
	ErrNoPorts = errors.New("nacostest: no free port pair (http, http+1000) on 127.0.0.1")
	// ErrStopped means the server is not running.
	ErrStopped = errors.New("nacostest: server is stopped")
	// ErrCASMismatch means a publish carried a casMd5 that does not match
	// the stored content.
	ErrCASMismatch = errors.New("nacostest: cas md5 mismatch")
)
