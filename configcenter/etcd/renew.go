package etcd

import (
	"bytes"
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kmsgo/kmsgo/configcenter"
)

// DefaultRenewAttempts bounds the compare-and-swap attempts per key.
const DefaultRenewAttempts = 5

// renewPageSize is how many keys one Get of a prefix reads.
const renewPageSize = 500

// RenewerOptions configure a Renewer. Exactly one of Key and Prefix is set.
type RenewerOptions struct {
	// Key is one key holding a document (or a single value).
	Key string
	// Prefix renews every key under it (documents or single values).
	Prefix string
	// Attempts bounds the compare-and-swap attempts per key (default
	// DefaultRenewAttempts). A key that keeps changing is left alone and
	// counted in RenewReport.GaveUp: a concurrent edit always wins.
	Attempts int
	// BeforeWrite, when set, is called after a key was read and renewed
	// and before its compare-and-swap write (tests, progress).
	BeforeWrite func(key string)
}

// Renewer re-encrypts ENC values stored in etcd under their keys' primary
// versions and writes them back with a transaction that succeeds only if
// the key's ModRevision is still the one read, so a watching
// configcenter picks up the new ciphertext (same plaintext) and an
// operator's concurrent edit is never overwritten. Opt-in: nothing calls it
// unless a job or `kmsctl config renew` is set up.
type Renewer struct {
	cli  *clientv3.Client
	opts RenewerOptions
}

var _ configcenter.SourceRenewer = (*Renewer)(nil)

// NewRenewer returns a Renewer writing through cli (owned by the caller).
func NewRenewer(cli *clientv3.Client, opts RenewerOptions) (*Renewer, error) {
	if cli == nil {
		return nil, fmt.Errorf("%w: nil client", ErrBadOptions)
	}
	if (opts.Key == "") == (opts.Prefix == "") {
		return nil, fmt.Errorf("%w: set exactly one of Key and Prefix", ErrBadOptions)
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultRenewAttempts
	}
	return &Renewer{cli: cli, opts: opts}, nil
}

// Name is "etcd:" and the key or prefix.
func (r *Renewer) Name() string {
	if r.opts.Key != "" {
		return "etcd:" + r.opts.Key
	}
	return "etcd:" + r.opts.Prefix + "*"
}

// Renew runs one renewal over the key or every key under the prefix. The
// error is non-nil when etcd or kmsd is unavailable or ctx ends; values
// that could not be renewed are counted in the report (see its Err).
func (r *Renewer) Renew(ctx context.Context, opts configcenter.RenewOptions) (configcenter.RenewReport, error) {
	run, err := configcenter.NewRenewal(opts)
	if err != nil {
		return configcenter.RenewReport{}, err
	}
	total := configcenter.RenewReport{DryRun: run.DryRun()}
	if r.opts.Key != "" {
		resp, err := r.cli.Get(ctx, r.opts.Key)
		if err != nil {
			return total, fmt.Errorf("configcenter/etcd: get %s: %w", r.opts.Key, err)
		}
		if len(resp.Kvs) == 0 {
			return total, fmt.Errorf("%w: %s", ErrKeyNotFound, r.opts.Key)
		}
		rep, err := r.renewKey(ctx, run, resp.Kvs[0].Key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision, resp.Kvs[0].Lease)
		total.Add(rep)
		return total, err
	}
	end := clientv3.GetPrefixRangeEnd(r.opts.Prefix)
	from := r.opts.Prefix
	for {
		resp, err := r.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(renewPageSize))
		if err != nil {
			return total, fmt.Errorf("configcenter/etcd: get %s*: %w", r.opts.Prefix, err)
		}
		for _, kv := range resp.Kvs {
			rep, err := r.renewKey(ctx, run, kv.Key, kv.Value, kv.ModRevision, kv.Lease)
			total.Add(rep)
			if err != nil {
				return total, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return total, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// renewKey renews one key's value and writes it back by compare-and-swap,
// re-reading and retrying after a conflict.
func (r *Renewer) renewKey(ctx context.Context, run *configcenter.Renewal, key, value []byte, modRev, lease int64) (configcenter.RenewReport, error) {
	var total configcenter.RenewReport
	for attempt := 1; ; attempt++ {
		out, rep, err := run.RenewText(ctx, string(key), value)
		if err != nil {
			return total, err
		}
		if run.DryRun() || bytes.Equal(out, value) {
			total.Add(rep)
			return total, nil
		}
		if r.opts.BeforeWrite != nil {
			r.opts.BeforeWrite(string(key))
		}
		var putOpts []clientv3.OpOption
		if lease != 0 {
			putOpts = append(putOpts, clientv3.WithIgnoreLease())
		}
		resp, err := r.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(string(key)), "=", modRev)).
			Then(clientv3.OpPut(string(key), string(out), putOpts...)).
			Else(clientv3.OpGet(string(key))).
			Commit()
		if err != nil {
			return total, fmt.Errorf("configcenter/etcd: write %s: %w", key, err)
		}
		if resp.Succeeded {
			rep.Written = 1
			total.Add(rep)
			return total, nil
		}
		// Conflict: someone changed (or deleted) the key since it was read.
		total.Conflicts++
		got := resp.Responses[0].GetResponseRange()
		if got == nil || len(got.Kvs) == 0 {
			return total, nil // deleted: nothing left to renew
		}
		if attempt >= r.opts.Attempts {
			total.Documents++
			total.GaveUp++
			return total, nil
		}
		value, modRev, lease = got.Kvs[0].Value, got.Kvs[0].ModRevision, got.Kvs[0].Lease
	}
}
