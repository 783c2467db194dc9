package nacos

import "errors"

// Sentinel errors of the Nacos source. Errors name dataIds and files, never
// config content.
var (
	// ErrConfig means the Config is incomplete or inconsistent.
	ErrConfig = errors.New("nacos: invalid config")
	// ErrFailoverFile means the SDK's cache dir holds a _failover file that
	// would silently replace a dataId's content from the server.
	ErrFailoverFile = errors.New("nacos: failover file present in the cache dir")
	// ErrFetch means a dataId could not be read from the server.
	ErrFetch = errors.New("nacos: cannot read config")
	// ErrClosed means the Source was closed.
	ErrClosed = errors.New("nacos: source closed")
	// ErrWatching means Watch is already running on this Source.
	ErrWatching = errors.New("nacos: Watch already running")
)
