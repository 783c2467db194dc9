package envelope

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// RewrapOptions configure Rewrap.
type RewrapOptions struct {
	// KeyIDs, when set, is the new recipient list: the data key is
	// re-encrypted inside KMS from the first existing recipient the
	// caller can use to each of these master keys (ids or aliases),
	// adding and dropping recipients. When empty, every existing
	// recipient is re-encrypted under its own key's current primary
	// version (after a rotation); each must succeed.
	KeyIDs []string
}

// Rewrap copies the stream from src to dst with the wrapped data keys in
// the header replaced through KMS ReEncrypt: the data key never reaches
// this process, and the rest of the header and the body are copied byte
// for byte (the header MAC does not cover the recipients, see FORMAT.md).
// It does not authenticate the body: a reader does. It returns the new
// header.
func (c *Codec) Rewrap(ctx context.Context, dst io.Writer, src io.Reader, opts RewrapOptions) (*Header, error) {
	h, err := ReadHeader(src)
	if err != nil {
		return nil, err
	}
	if len(opts.KeyIDs) > MaxRecipients {
		return nil, fmt.Errorf("%w: at most %d keys", ErrInvalidOptions, MaxRecipients)
	}
	var rs []Recipient
	if len(opts.KeyIDs) == 0 {
		for i, r := range h.Recipients {
			res, err := c.kms.ReEncrypt(ctx, r.WrappedKey, h.Context, r.KeyID, h.Context)
			if err != nil {
				return nil, fmt.Errorf("envelope: rewrap recipient %d (key %s): %w", i+1, r.KeyID, err)
			}
			rs = append(rs, Recipient{KeyID: res.KeyID, WrappedKey: res.CiphertextBlob})
		}
	} else {
		from := -1 // the first recipient KMS accepts, reused for every target
		for _, k := range opts.KeyIDs {
			var errs []error
			var got *Recipient
			for i, r := range h.Recipients {
				if from >= 0 && i != from {
					continue
				}
				res, err := c.kms.ReEncrypt(ctx, r.WrappedKey, h.Context, k, h.Context)
				if err != nil {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					errs = append(errs, fmt.Errorf("recipient %d (key %s) to %s: %w", i+1, r.KeyID, k, err))
					continue
				}
				from = i
				got = &Recipient{KeyID: res.KeyID, WrappedKey: res.CiphertextBlob}
				break
			}
			if got == nil {
				return nil, fmt.Errorf("envelope: rewrap to %s: %w: %w", k, ErrNoRecipient, errors.Join(errs...))
			}
			if !hasRecipient(rs, got.KeyID) {
				rs = append(rs, *got)
			}
		}
	}
	out := *h
	out.Recipients = rs
	hb, err := out.encode()
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(hb); err != nil {
		return nil, err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return nil, err
	}
	return &out, nil
}
