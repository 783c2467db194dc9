package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
)

// DefaultPollInterval is how often Watch checks the file.
const DefaultPollInterval = time.Second

// racyWindow: file systems stamp modification times with a coarse clock,
// so a rewrite of the same size within one tick keeps the same time. While
// the recorded time is this close to when the content was read, every poll
// re-reads and compares the content ("racy git" rule).
const racyWindow = 2 * time.Second

// maxSize bounds the file read (a config file, not a data file).
const maxSize = 16 << 20

// Options configure a Source.
type Options struct {
	// Format of the file; empty means inferred from its name.
	Format configcenter.Format
	// PollInterval between checks; default DefaultPollInterval.
	PollInterval time.Duration
}

// Source reads one file. Safe for concurrent use.
type Source struct {
	path string
	opts Options

	mu      sync.Mutex
	sum     [sha256.Size]byte // content last delivered
	size    int64
	mtime   time.Time
	readAt  time.Time // when the content was last read
	missing bool      // last check could not read the file (reported once)

	closeOnce sync.Once
	done      chan struct{}
}

var _ configcenter.Source = (*Source)(nil)

// New returns a source for the file at path. Nothing is read until Load.
func New(path string, opts Options) *Source {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	return &Source{path: path, opts: opts, done: make(chan struct{})}
}

// Name is "file:" and the path.
func (s *Source) Name() string { return "file:" + s.path }

// Load reads the file.
func (s *Source) Load(ctx context.Context) (configcenter.State, error) {
	select {
	case <-s.done:
		return configcenter.State{}, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return configcenter.State{}, err
	}
	st, data, err := s.read()
	if err != nil {
		return configcenter.State{}, err
	}
	s.mu.Lock()
	s.sum, s.size, s.mtime, s.readAt, s.missing = sha256.Sum256(data), st.Size(), st.ModTime(), time.Now(), false
	s.mu.Unlock()
	return s.state(data, st.ModTime()), nil
}

func (s *Source) read() (os.FileInfo, []byte, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("configcenter/file: %s is not a regular file", s.path)
	}
	if st.Size() > maxSize {
		return nil, nil, fmt.Errorf("configcenter/file: %s is larger than %d bytes", s.path, maxSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxSize {
		return nil, nil, fmt.Errorf("configcenter/file: %s is larger than %d bytes", s.path, maxSize)
	}
	return st, data, nil
}

func (s *Source) state(data []byte, mtime time.Time) configcenter.State {
	sum := sha256.Sum256(data)
	return configcenter.State{
		Docs:     []configcenter.Document{{Name: s.path, Format: s.opts.Format, Data: data}},
		Revision: mtime.UTC().Format(time.RFC3339Nano) + "/" + hex.EncodeToString(sum[:8]),
	}
}

// Watch polls the file until ctx is done or Close, and calls onChange with
// each new content. A file that cannot be read is reported to onError once
// until it can be read again.
func (s *Source) Watch(ctx context.Context, onChange func(configcenter.State), onError func(error)) error {
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-t.C:
		}
		s.check(onChange, onError)
	}
}

func (s *Source) check(onChange func(configcenter.State), onError func(error)) {
	fi, err := os.Stat(s.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && !s.missing && fi.Size() == s.size && fi.ModTime().Equal(s.mtime) &&
		s.readAt.Sub(s.mtime) > racyWindow {
		return
	}
	var data []byte
	if err == nil {
		fi, data, err = s.read()
	}
	if err != nil {
		if !s.missing {
			s.missing = true
			onError(err)
		}
		return
	}
	s.missing = false
	s.size, s.mtime, s.readAt = fi.Size(), fi.ModTime(), time.Now()
	sum := sha256.Sum256(data)
	if sum == s.sum {
		return
	}
	s.sum = sum
	onChange(s.state(data, fi.ModTime()))
}

// Close stops Watch. Safe to call more than once.
func (s *Source) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}
