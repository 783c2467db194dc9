package audit

import "context"

// List returns one page of the records in the Logger's database (see the
// package-level List).
func (l *Logger) List(ctx context.Context, opts ListOptions) (Page, error) {
	return List(ctx, l.db, opts)
}

// Verify checks every replica's chain in the Logger's database under the
// Logger's own chain key (see the package-level Verify), so that callers
// never hold the key. It fails with ErrClosed after Close.
func (l *Logger) Verify(ctx context.Context, anchors ...Head) (Report, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return Report{}, ErrClosed
	}
	return verify(ctx, l.db, l.h, anchors)
}
