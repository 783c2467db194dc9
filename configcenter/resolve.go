package configcenter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// Decrypter decrypts ciphertexts in batches. *kmsclient.Client and
// *kmsclient.Cached implement it.
type Decrypter interface {
	DecryptBatch(ctx context.Context, items []kmsclient.DecryptItem) ([]kmsclient.DecryptBatchResult, error)
}

var (
	_ Decrypter = (*kmsclient.Client)(nil)
	_ Decrypter = (*kmsclient.Cached)(nil)
)

// PathError is a problem with the value at one config path. It names the
// path and the reason, never the value, and matches its sentinel
// (ErrDecrypt, ErrMalformedMarker, ErrNoDecrypter) and the underlying
// kmsclient error with errors.Is.
type PathError struct {
	Path string
	Err  error // a sentinel of this package, wrapping the cause
}

func (e *PathError) Error() string {
	return fmt.Sprintf("config path %q: %v", e.Path, e.Err)
}

func (e *PathError) Unwrap() error { return e.Err }

// site is one string value holding at least one marker.
type site struct {
	path  string
	set   func(string)
	raw   string
	spans []markerSpan
}

// resolver turns ENC markers into plaintext. Not safe for concurrent use:
// the Config serialises calls.
type resolver struct {
	dec      Decrypter
	marker   Marker
	embedded bool
	encCtx   map[string]string
	// cache maps base64 ciphertext to plaintext for the ciphertexts of
	// the active snapshot.
	cache map[string]string
	stats *counters
}

// maxPathErrors bounds how many value errors one error reports.
const maxPathErrors = 10

// resolve replaces every marker in raw (mutated in place) by its
// plaintext. On success it returns the cache for the new snapshot, to be
// committed by the caller once the snapshot is swapped in.
func (r *resolver) resolve(ctx context.Context, raw map[string]any) (map[string]string, error) {
	var sites []site
	var errs []error
	walk(raw, "", func(p string, s string, set func(string)) {
		spans, err := findMarkers(s, r.marker, r.embedded)
		if err != nil {
			errs = append(errs, &PathError{Path: p, Err: err})
			return
		}
		if len(spans) > 0 {
			sites = append(sites, site{path: p, set: set, raw: s, spans: spans})
		}
	})
	if len(errs) > 0 {
		return nil, joinBounded(errs)
	}
	next := make(map[string]string, len(sites))
	if len(sites) == 0 {
		return next, nil
	}
	if r.dec == nil {
		for _, s := range sites {
			errs = append(errs, &PathError{Path: s.path, Err: ErrNoDecrypter})
		}
		return nil, joinBounded(errs)
	}
	// Unique ciphertexts not in the cache, in a stable order.
	var missing []string
	var blobs [][]byte
	seen := map[string]bool{}
	for _, s := range sites {
		for _, sp := range s.spans {
			if pt, ok := r.cache[sp.B64]; ok {
				next[sp.B64] = pt
				continue
			}
			if !seen[sp.B64] {
				seen[sp.B64] = true
				missing = append(missing, sp.B64)
				blobs = append(blobs, sp.Blob)
			}
		}
	}
	r.stats.cacheHits.Add(uint64(len(next)))
	failed := map[string]error{}
	if len(missing) > 0 {
		items := make([]kmsclient.DecryptItem, len(missing))
		for i := range missing {
			items[i] = kmsclient.DecryptItem{CiphertextBlob: blobs[i], EncryptionContext: r.encCtx}
		}
		r.stats.decryptCalls.Add(1)
		res, err := r.dec.DecryptBatch(ctx, items)
		if err != nil {
			return nil, fmt.Errorf("%w: decrypting %d values: %w", ErrKMSUnavailable, len(items), err)
		}
		if len(res) != len(items) {
			for _, x := range res {
				clear(x.Plaintext)
			}
			return nil, fmt.Errorf("%w: decrypter returned %d results for %d values", ErrKMSUnavailable, len(res), len(items))
		}
		r.stats.decrypted.Add(uint64(len(items)))
		for i, x := range res {
			if x.Err != nil {
				failed[missing[i]] = x.Err
				continue
			}
			next[missing[i]] = string(x.Plaintext)
			clear(x.Plaintext)
		}
	}
	for _, s := range sites {
		for _, sp := range s.spans {
			if err, bad := failed[sp.B64]; bad {
				errs = append(errs, &PathError{Path: s.path, Err: fmt.Errorf("%w: %w", ErrDecrypt, err)})
				break
			}
		}
	}
	if len(errs) > 0 {
		return nil, joinBounded(errs)
	}
	for _, s := range sites {
		if len(s.spans) == 1 && s.spans[0].Start == 0 && s.spans[0].End == len(s.raw) {
			s.set(next[s.spans[0].B64])
			continue
		}
		var sb strings.Builder
		last := 0
		for _, sp := range s.spans {
			sb.WriteString(s.raw[last:sp.Start])
			sb.WriteString(next[sp.B64])
			last = sp.End
		}
		sb.WriteString(s.raw[last:])
		s.set(sb.String())
	}
	return next, nil
}

// joinBounded joins at most maxPathErrors errors and says how many more
// there were.
func joinBounded(errs []error) error {
	if len(errs) <= maxPathErrors {
		return errors.Join(errs...)
	}
	more := fmt.Errorf("... and %d more", len(errs)-maxPathErrors)
	return errors.Join(append(errs[:maxPathErrors:maxPathErrors], more)...)
}

// walk calls fn for every string leaf of v (maps and slices, recursively)
// with its path and a setter that replaces it in place. Map keys are
// visited in sorted order so that errors come in a stable order.
func walk(v any, p string, fn func(path, s string, set func(string))) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			cp := k
			if p != "" {
				cp = p + "." + k
			}
			if s, ok := t[k].(string); ok {
				m, key := t, k
				fn(cp, s, func(x string) { m[key] = x })
				continue
			}
			walk(t[k], cp, fn)
		}
	case []any:
		for i := range t {
			cp := p + "[" + strconv.Itoa(i) + "]"
			if s, ok := t[i].(string); ok {
				sl, idx := t, i
				fn(cp, s, func(x string) { sl[idx] = x })
				continue
			}
			walk(t[i], cp, fn)
		}
	}
}
