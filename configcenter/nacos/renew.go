package nacos

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/kmsgo/kmsgo/configcenter"
)

// conflictBackoff is the pause before re-reading a dataId after a failed
// publish.
const conflictBackoff = 250 * time.Millisecond

// DefaultRenewAttempts bounds the compare-and-swap publishes per dataId.
const DefaultRenewAttempts = 5

// RenewerOptions configure a Renewer.
type RenewerOptions struct {
	// Attempts bounds the compare-and-swap publishes per dataId (default
	// DefaultRenewAttempts). A dataId that keeps changing is left alone
	// and counted in RenewReport.GaveUp: a concurrent edit always wins.
	Attempts int
	// BeforeWrite, when set, is called after a dataId was read and renewed
	// and before its compare-and-swap publish (tests, progress).
	BeforeWrite func(dataID string)
	// SrcUser is reported to Nacos as the publishing user (default
	// "kmsgo-renew").
	SrcUser string
}

// Renewer re-encrypts the ENC values of a Source's dataIds under their
// keys' primary versions and publishes them back with the MD5 of the
// content it read as compare-and-swap (ConfigParam.CasMd5), so watching
// applications pick up the new ciphertext (same plaintext) and an
// operator's concurrent publish is never overwritten. Opt-in: nothing calls
// it unless a job or `kmsctl config renew` is set up.
//
// The SDK's publish sends the config type (from the dataId's format) and
// SrcUser; Nacos keeps no other metadata from the previous version's
// publish form (description, tags): set them again in the console if used.
type Renewer struct {
	src  *Source
	opts RenewerOptions
}

var _ configcenter.SourceRenewer = (*Renewer)(nil)

// NewRenewer renews the dataIds of src (which stays owned by the caller;
// it can be a Source used for nothing else).
func NewRenewer(src *Source, opts RenewerOptions) (*Renewer, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: nil Source", ErrConfig)
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultRenewAttempts
	}
	if opts.SrcUser == "" {
		opts.SrcUser = "kmsgo-renew"
	}
	return &Renewer{src: src, opts: opts}, nil
}

// Name is the Source's name.
func (r *Renewer) Name() string { return r.src.Name() }

// Renew runs one renewal over every dataId. The error is non-nil when Nacos
// or kmsd is unavailable or ctx ends; values that could not be renewed are
// counted in the report (see its Err).
func (r *Renewer) Renew(ctx context.Context, opts configcenter.RenewOptions) (configcenter.RenewReport, error) {
	run, err := configcenter.NewRenewal(opts)
	if err != nil {
		return configcenter.RenewReport{}, err
	}
	total := configcenter.RenewReport{DryRun: run.DryRun()}
	for _, id := range r.src.cfg.DataIDs {
		rep, err := r.renewDataID(ctx, run, id)
		total.Add(rep)
		if err != nil {
			return total, err
		}
	}
	r.src.tighten()
	return total, nil
}

func md5Of(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (r *Renewer) renewDataID(ctx context.Context, run *configcenter.Renewal, id string) (configcenter.RenewReport, error) {
	var total configcenter.RenewReport
	content, err := r.src.fetch(ctx, id)
	if err != nil {
		return total, err
	}
	for attempt := 1; ; attempt++ {
		if content == "" {
			return total, nil // no such dataId (or deleted meanwhile)
		}
		out, rep, err := run.RenewText(ctx, id, []byte(content))
		if err != nil {
			return total, err
		}
		if run.DryRun() || string(out) == content {
			total.Add(rep)
			return total, nil
		}
		if r.opts.BeforeWrite != nil {
			r.opts.BeforeWrite(id)
		}
		perr := r.publish(ctx, id, string(out), md5Of(content))
		if perr == nil {
			rep.Written = 1
			total.Add(rep)
			return total, nil
		}
		// The publish failed: a CAS conflict if the content changed since it
		// was read (Nacos's refusal text is not a stable contract), else a
		// real error. Wait a little first: it lets an editor finish and
		// keeps re-reads under the SDK's per-dataId limit of 5 queries/s.
		select {
		case <-time.After(conflictBackoff):
		case <-ctx.Done():
			return total, ctx.Err()
		}
		now, err := r.src.fetch(ctx, id)
		if err != nil {
			return total, err
		}
		if now == content {
			return total, fmt.Errorf("nacos: publish dataId %q: %w", id, perr)
		}
		total.Conflicts++
		if attempt >= r.opts.Attempts {
			total.Documents++
			total.GaveUp++
			return total, nil
		}
		content = now
	}
}

// publish writes content with casMd5, honouring ctx like fetch.
func (r *Renewer) publish(ctx context.Context, id, content, casMd5 string) error {
	f := r.src.cfg.Formats[id]
	if f == "" {
		f = configcenter.FormatOf(id)
	}
	typ := ""
	switch f {
	case configcenter.FormatYAML, configcenter.FormatJSON, configcenter.FormatProperties:
		typ = string(f)
	}
	ch := make(chan error, 1)
	go func() {
		ok, err := r.src.client.PublishConfig(vo.ConfigParam{DataId: id, Group: r.src.cfg.Group, Content: content,
			CasMd5: casMd5, Type: typ, SrcUser: r.opts.SrcUser, AppName: r.src.cfg.AppName})
		if err == nil && !ok {
			err = fmt.Errorf("publish refused")
		}
		ch <- err
	}()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-r.src.closed:
		return ErrClosed
	}
}
