package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/file"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

type recorder struct {
	mu      sync.Mutex
	changes []string
	errs    []error
}

func (r *recorder) onChange(st configcenter.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, string(st.Docs[0].Data))
}

func (r *recorder) onError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) snapshot() ([]string, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.changes...), append([]error(nil), r.errs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		file    string
		opts    file.Options
		wantFmt configcenter.Format
		wantErr bool
	}{
		{"yaml", "app.yaml", file.Options{}, "", false},
		{"explicit format", "app.conf", file.Options{Format: configcenter.FormatProperties}, configcenter.FormatProperties, false},
		{"missing", "nope.yaml", file.Options{}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			if !tc.wantErr {
				write(t, p, "a: 1\n")
			}
			s := file.New(p, tc.opts)
			defer s.Close()
			st, err := s.Load(context.Background())
			if tc.wantErr {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Docs) != 1 || st.Docs[0].Name != p || st.Docs[0].Format != tc.wantFmt ||
				string(st.Docs[0].Data) != "a: 1\n" || st.Revision == "" {
				t.Fatalf("state %+v", st)
			}
			if s.Name() != "file:"+p {
				t.Fatalf("name %q", s.Name())
			}
		})
	}
	if _, err := file.New(dir, file.Options{}).Load(context.Background()); err == nil {
		t.Fatal("a directory loaded")
	}
}

// Watch delivers each new content once, in order; rewriting the same
// content or touching the file is not a change; a vanished file is
// reported once and its return is a change; Close ends Watch.
func TestWatch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.yaml")
	write(t, p, "v: 0\n")
	s := file.New(p, file.Options{PollInterval: 5 * time.Millisecond})
	if _, err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	var r recorder
	done := make(chan error, 1)
	go func() { done <- s.Watch(context.Background(), r.onChange, r.onError) }()

	// Same size, written right away: the racy-window rule still sees it.
	for _, v := range []string{"v: 1\n", "v: 2\n", "v: 3\n"} {
		write(t, p, v)
		waitFor(t, v, func() bool { c, _ := r.snapshot(); return len(c) > 0 && c[len(c)-1] == v })
	}
	write(t, p, "v: 3\n") // same content
	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, now, now); err != nil { // touch
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "error", func() bool { _, e := r.snapshot(); return len(e) > 0 })
	time.Sleep(100 * time.Millisecond) // more polls: still one error
	write(t, p, "v: 4\n")
	waitFor(t, "v: 4", func() bool { c, _ := r.snapshot(); return len(c) == 4 })
	changes, errs := r.snapshot()
	if want := []string{"v: 1\n", "v: 2\n", "v: 3\n", "v: 4\n"}; fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Fatalf("changes %q, want %q", changes, want)
	}
	if len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
		t.Fatalf("errors %v", errs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not return after Close")
	}
	if _, err := s.Load(context.Background()); !errors.Is(err, file.ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
}

func TestWatchStopsOnContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.json")
	write(t, p, "{}")
	s := file.New(p, file.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func(configcenter.State) {}, func(error) {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not return")
	}
}
