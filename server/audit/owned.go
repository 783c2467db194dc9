package audit

import "context"

// List returns one page of the records in the Logger's database (see the
// package-level List).
func (l *Logger) List(ctx context.Context, opts ListOptions) (Page, error) {
	if err := l.Flush(ctx); err != nil {
		return Page{}, err
	}
	return List(ctx, l.db, opts)
}

// Verify checks every replica's chain in the Logger's database under the
// Logger's own chain key (see the package-level Verify), so that callers
// never hold the key. It fails with ErrClosed after Close.
func (l *Logger) Verify(ctx context.Context, anchors ...Head) (Report, error) {
	return l.VerifyWith(ctx, VerifyOptions{Anchors: anchors})
}

// VerifyWith is Verify with options. The anchors this replica wrote to its
// anchor file (Config.Anchors) are always checked besides opts.Anchors.
func (l *Logger) VerifyWith(ctx context.Context, opts VerifyOptions) (Report, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return Report{}, ErrClosed
	}
	if err := l.Flush(ctx); err != nil {
		return Report{}, err
	}
	if l.cfg.Anchors != nil {
		local, err := l.cfg.Anchors.Anchors()
		if err != nil {
			return Report{}, err
		}
		opts.Anchors = append(append([]Head(nil), opts.Anchors...), LatestHeads(local)...)
	}
	return verify(ctx, l.db, l.h, l.sealKey, opts)
}

// Export returns replica's records after seq after (after < 0: after the
// last exported record), verified and sealed under the Logger's key (see
// the package-level Export).
func (l *Logger) Export(ctx context.Context, replica string, after int64, limit int) (Segment, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return Segment{}, ErrClosed
	}
	if err := l.Flush(ctx); err != nil {
		return Segment{}, err
	}
	if after < 0 {
		var err error
		if after, err = LastExported(ctx, l.db, replica); err != nil {
			return Segment{}, err
		}
	}
	return export(ctx, l.db, l.h, l.sealKey, replica, after, limit)
}

// MarkExported records that the sealed segment s was stored safely (see
// the package-level MarkExported).
func (l *Logger) MarkExported(ctx context.Context, s Seal) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	return markExported(ctx, l.db, l.sealKey, s)
}
