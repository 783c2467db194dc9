// Package etcdtest runs a real etcd server in-process for tests
// (go.etcd.io/etcd/server/v3/embed): one member on free loopback ports,
// its data in a test temp dir, stoppable and restartable on the same
// address so that clients see a server restart.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startTimeout bounds how long a start may take on a loaded machine.
const startTimeout = 60 * time.Second

// Server is a running (or stopped) single-member etcd.
type Server struct {
	// Endpoint is the client URL, e.g. http://127.0.0.1:41234. It stays
	// the same across Restart.
	Endpoint string
	// Dir is the data directory.
	Dir string

	t         testing.TB
	clientURL url.URL
	peerURL   url.URL
	mu        sync.Mutex
	etcd      *embed.Etcd
}

// Start starts an etcd server and registers its shutdown with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, Dir: t.TempDir()}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		s.clientURL = url.URL{Scheme: "http", Host: freeAddr(t)}
		s.peerURL = url.URL{Scheme: "http", Host: freeAddr(t)}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("etcdtest: start: %v", err)
	}
	s.Endpoint = s.clientURL.String()
	t.Cleanup(s.Stop)
	return s
}

// freeAddr returns a loopback address whose port was free a moment ago
// (etcd needs the port in its configuration before it listens).
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *Server) start() error {
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = s.Dir
	cfg.ListenClientUrls = []url.URL{s.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{s.clientURL}
	cfg.ListenPeerUrls = []url.URL{s.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{s.peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.InitialClusterToken = "etcdtest"
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // test data only
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return err
	case <-time.After(startTimeout):
		e.Close()
		return fmt.Errorf("not ready after %s", startTimeout)
	}
	s.mu.Lock()
	s.etcd = e
	s.mu.Unlock()
	return nil
}

// Stop stops the server, keeping its data. Safe to call when stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	e := s.etcd
	s.etcd = nil
	s.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart stops the server if it runs and starts it again on the same
// addresses and data. It fails the test if the server does not come back.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the ports may linger briefly
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("etcdtest: restart: %v", err)
}

// Client returns a new client of the server, closed at the end of the test.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.Endpoint},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Compact compacts the server's history up to the current revision and
// returns that revision: a watcher behind it gets ErrCompacted.
func (s *Server) Compact(t testing.TB, c *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "etcdtest-compact-probe")
	if err != nil {
		t.Fatalf("etcdtest: get: %v", err)
	}
	rev := resp.Header.Revision
	if _, err := c.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("etcdtest: compact: %v", err)
	}
	return rev
}
