package file

import "errors"

// ErrClosed is returned by Load after Close.
var ErrClosed = errors.New("configcenter/file: closed")
