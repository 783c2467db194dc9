//go:build unix

package nacos_test

import (
	"context"
	"io/fs"
	"syscall"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
)

// TestModesTightenedUnderUmask checks the modes even when the process umask
// would let the SDK's 0666 files be world-readable.
func TestModesTightenedUnderUmask(t *testing.T) {
	old := syscall.Umask(0) // the SDK's 0666/0777 now land as is
	t.Cleanup(func() { syscall.Umask(old) })
	srv := nacostest.StartT(t, nacostest.Options{})
	srv.Publish(ns(t), grp, "app.yaml", "a: 1\n")
	cfg := baseConfig(t, srv, "app.yaml")
	src := newSource(t, cfg)
	if _, err := src.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	files := 0
	for p, mode := range walkFiles(t, cfg.Dir) {
		want := fs.FileMode(0o600)
		if mode.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if mode.Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, mode.Perm(), want)
		}
	}
	if files == 0 {
		t.Fatal("the SDK wrote no snapshot file; nothing was checked")
	}
}
