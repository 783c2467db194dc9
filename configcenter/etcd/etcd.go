package etcd

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kmsgo/kmsgo/configcenter"
)

// Defaults of Options.
const (
	DefaultRetryInterval = 500 * time.Millisecond
	DefaultSeparator     = "/"
	maxRetryInterval     = 10 * time.Second
)

// Options configure a Source. Exactly one of Key and Prefix is set.
type Options struct {
	// Key is a key holding a whole document.
	Key string
	// Format of the Key's document; empty means inferred from the key.
	Format configcenter.Format
	// Prefix is a key prefix whose keys are config paths.
	Prefix string
	// Separator in keys under Prefix that stands for a path level;
	// default "/" ("db/password" is "db.password").
	Separator string
	// RetryInterval is the first delay between attempts to re-read the
	// state after a broken watch; it doubles up to 10s. Default 500ms.
	RetryInterval time.Duration
}

// Source reads configuration from etcd. Safe for concurrent use.
type Source struct {
	cli       *clientv3.Client
	ownClient bool
	opts      Options

	mu     sync.Mutex
	rev    int64             // revision of the last state delivered or loaded
	kvs    map[string][]byte // key -> value at rev
	loaded bool

	closeOnce sync.Once
	done      chan struct{}
}

var _ configcenter.Source = (*Source)(nil)

// New returns a source reading through cli, which the caller owns and
// closes after the source.
func New(cli *clientv3.Client, opts Options) (*Source, error) {
	if cli == nil {
		return nil, fmt.Errorf("%w: nil client", ErrBadOptions)
	}
	if (opts.Key == "") == (opts.Prefix == "") {
		return nil, fmt.Errorf("%w: set exactly one of Key and Prefix", ErrBadOptions)
	}
	if opts.Key != "" && opts.Format == "" && configcenter.FormatOf(opts.Key) == "" {
		return nil, fmt.Errorf("%w: key %q has no known suffix; set Format", ErrBadOptions, opts.Key)
	}
	if opts.Separator == "" {
		opts.Separator = DefaultSeparator
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	return &Source{cli: cli, opts: opts, kvs: map[string][]byte{}, done: make(chan struct{})}, nil
}

// Dial is New with a client made from cfg, which the source owns and
// closes in Close.
func Dial(cfg clientv3.Config, opts Options) (*Source, error) {
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, err
	}
	s, err := New(cli, opts)
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	s.ownClient = true
	return s, nil
}

// Name is "etcd:" and the key or prefix.
func (s *Source) Name() string {
	if s.opts.Key != "" {
		return "etcd:" + s.opts.Key
	}
	return "etcd:" + s.opts.Prefix + "*"
}

func (s *Source) watchKey() (string, []clientv3.OpOption) {
	if s.opts.Key != "" {
		return s.opts.Key, nil
	}
	return s.opts.Prefix, []clientv3.OpOption{clientv3.WithPrefix()}
}

// read gets the full state and its revision.
func (s *Source) read(ctx context.Context) (map[string][]byte, int64, error) {
	key, opts := s.watchKey()
	resp, err := s.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, 0, err
	}
	kvs := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = kv.Value
	}
	return kvs, resp.Header.Revision, nil
}

// Load reads the current state.
func (s *Source) Load(ctx context.Context) (configcenter.State, error) {
	select {
	case <-s.done:
		return configcenter.State{}, ErrClosed
	default:
	}
	kvs, rev, err := s.read(ctx)
	if err != nil {
		return configcenter.State{}, fmt.Errorf("configcenter/etcd: get %s: %w", s.Name(), err)
	}
	if s.opts.Key != "" && kvs[s.opts.Key] == nil {
		return configcenter.State{}, fmt.Errorf("%w: %s", ErrKeyNotFound, s.opts.Key)
	}
	s.mu.Lock()
	s.kvs, s.rev, s.loaded = kvs, rev, true
	s.mu.Unlock()
	return s.state(kvs, rev), nil
}

func (s *Source) state(kvs map[string][]byte, rev int64) configcenter.State {
	st := configcenter.State{Revision: strconv.FormatInt(rev, 10)}
	if s.opts.Key != "" {
		st.Docs = []configcenter.Document{{Name: s.opts.Key, Format: s.opts.Format, Data: kvs[s.opts.Key]}}
		return st
	}
	st.Values = make(map[string]string, len(kvs))
	for k, v := range kvs {
		rel := strings.TrimPrefix(k, s.opts.Prefix)
		rel = strings.Trim(rel, s.opts.Separator)
		if rel == "" {
			continue
		}
		st.Values[strings.ReplaceAll(rel, s.opts.Separator, ".")] = string(v)
	}
	return st
}

// Watch delivers every later state, one per etcd revision, until ctx is
// done or Close. Load must have been called first.
func (s *Source) Watch(ctx context.Context, onChange func(configcenter.State), onError func(error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.mu.Lock()
	loaded := s.loaded
	s.mu.Unlock()
	if !loaded {
		if err := s.resync(ctx, onChange, onError); err != nil {
			return nil // ctx done
		}
	}
	for ctx.Err() == nil {
		err := s.watchOnce(ctx, onChange, onError)
		if ctx.Err() != nil {
			return nil
		}
		onError(fmt.Errorf("%w: %v", ErrWatchBroken, err))
		if s.resync(ctx, onChange, onError) != nil {
			return nil
		}
	}
	return nil
}

// watchOnce watches from the last revision + 1 until the watch ends, and
// returns why it ended.
func (s *Source) watchOnce(ctx context.Context, onChange func(configcenter.State), onError func(error)) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	s.mu.Lock()
	from := s.rev + 1
	s.mu.Unlock()
	key, opts := s.watchKey()
	opts = append(opts, clientv3.WithRev(from))
	for resp := range s.cli.Watch(wctx, key, opts...) {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return fmt.Errorf("watch canceled: %s", resp.CancelReason)
		}
		s.applyEvents(resp.Events, onChange, onError)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("watch channel closed")
}

// applyEvents applies events in order and delivers one state per
// revision; events at or below the last revision are skipped.
func (s *Source) applyEvents(events []*clientv3.Event, onChange func(configcenter.State), onError func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(events); {
		rev := events[i].Kv.ModRevision
		j := i
		for j < len(events) && events[j].Kv.ModRevision == rev {
			j++
		}
		if rev <= s.rev {
			i = j
			continue
		}
		next := maps.Clone(s.kvs)
		for _, ev := range events[i:j] {
			switch ev.Type {
			case mvccpb.PUT:
				next[string(ev.Kv.Key)] = ev.Kv.Value
			case mvccpb.DELETE:
				delete(next, string(ev.Kv.Key))
			}
		}
		i = j
		if s.opts.Key != "" && next[s.opts.Key] == nil {
			s.rev = rev // the deletion is seen; keep the last content
			onError(fmt.Errorf("%w: %s at revision %d", ErrKeyDeleted, s.opts.Key, rev))
			continue
		}
		s.kvs, s.rev = next, rev
		onChange(s.state(next, rev))
	}
}

// resync re-reads the whole state (retrying with backoff until it works
// or ctx is done), delivers it if it differs from the last one, and sets
// the revision to watch from.
func (s *Source) resync(ctx context.Context, onChange func(configcenter.State), onError func(error)) error {
	delay := s.opts.RetryInterval
	for {
		kvs, rev, err := s.read(ctx)
		if err == nil {
			s.mu.Lock()
			defer s.mu.Unlock()
			if rev <= s.rev {
				return nil // nothing newer (cannot go back in time)
			}
			same := equalKVs(kvs, s.kvs)
			s.rev = rev
			if s.opts.Key != "" && kvs[s.opts.Key] == nil {
				if s.loaded && s.kvs[s.opts.Key] != nil {
					onError(fmt.Errorf("%w: %s at revision %d", ErrKeyDeleted, s.opts.Key, rev))
				}
				s.kvs, s.loaded = kvs, true
				return nil
			}
			s.kvs, s.loaded = kvs, true
			if !same {
				onChange(s.state(kvs, rev))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		onError(fmt.Errorf("configcenter/etcd: re-read %s: %w", s.Name(), err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, maxRetryInterval)
	}
}

func equalKVs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

// Close stops Watch and, for a source made by Dial, closes the client.
// Safe to call more than once.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		if s.ownClient {
			err = s.cli.Close()
		}
	})
	return err
}
