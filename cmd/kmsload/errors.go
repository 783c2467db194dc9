package main

import "errors"

// Sentinel errors of kmsload.
var (
	// ErrUsage marks invalid flags or flag values (exit status 2).
	ErrUsage = errors.New("kmsload: invalid usage")
	// ErrRemoteEndpoint refuses a non-loopback endpoint without --allow-remote.
	ErrRemoteEndpoint = errors.New("kmsload: endpoint is not a loopback address (use --allow-remote to override)")
	// ErrCredentials is a missing, unreadable or malformed credential source.
	ErrCredentials = errors.New("kmsload: credentials")
	// ErrSetup is a failure before the load starts (server unreachable,
	// key creation failed, ...).
	ErrSetup = errors.New("kmsload: setup")
	// ErrRequestsFailed reports that some measured requests failed; the
	// report is still printed.
	ErrRequestsFailed = errors.New("kmsload: some requests failed")
)
