package etcd

import "errors"

// Sentinel errors.
var (
	// ErrBadOptions: neither or both of Key and Prefix, or no client.
	ErrBadOptions = errors.New("configcenter/etcd: invalid options")
	// ErrKeyNotFound: the Key layout's key does not exist.
	ErrKeyNotFound = errors.New("configcenter/etcd: key not found")
	// ErrKeyDeleted: the Key layout's key was deleted; the last state stays.
	ErrKeyDeleted = errors.New("configcenter/etcd: key deleted")
	// ErrWatchBroken: the watch ended (compaction, lost leader, closed
	// stream); the source re-reads the state and watches again.
	ErrWatchBroken = errors.New("configcenter/etcd: watch broken, resyncing")
	// ErrClosed: the source was closed.
	ErrClosed = errors.New("configcenter/etcd: closed")
)
