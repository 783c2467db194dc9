package nacostest

import (
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	nacosgrpc "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// rpcPortOffset is the SDK's constant.RpcPortOffset: the gRPC port is the
// HTTP port plus this.
const rpcPortOffset = 1000

// Options configure a test server. The zero value is an open server with no
// authentication and no TLS.
type Options struct {
	// Username and Password, when Username is set, enable Nacos auth: the
	// SDK must log in over HTTP and send the issued accessToken with every
	// config request.
	Username, Password string
	// AccessKey and SecretKey, when AccessKey is set, require the SDK's
	// Spas-AccessKey / Spas-Signature (HMAC-SHA1) headers on every config
	// request.
	AccessKey, SecretKey string
	// TLS, when set, serves gRPC over TLS with this configuration.
	TLS *tls.Config
	// TokenTTL is the lifetime of issued access tokens (default 1h).
	TokenTTL time.Duration
}

type configKey struct{ tenant, group, dataID string }

type configItem struct {
	content          string
	md5              string
	encryptedDataKey string
	lastModified     int64
}

// Server is a running (or stopped) in-process Nacos test server. It is safe
// for concurrent use.
type Server struct {
	opts Options

	httpPort, grpcPort int

	mu       sync.Mutex
	running  bool
	httpSrv  *http.Server
	grpcSrv  *grpc.Server
	configs  map[configKey]configItem
	conns    map[string]*conn
	tokens   map[string]time.Time
	nextID   uint64
	logins   int
	requests map[string]int
}

// conn is one client connection (one TCP connection, identified by the
// client's address) and the bi-directional stream it opened.
type conn struct {
	id      string
	sendMu  sync.Mutex
	stream  nacosgrpc.BiRequestStream_RequestBiStreamServer
	ready   chan struct{} // closed once ConnectionSetupRequest arrived
	listens map[configKey]bool
	closed  bool // guarded by sendMu: no Send after the handler returned
}

// Start starts a server on a free pair of ports on 127.0.0.1 whose gRPC
// port is the HTTP port + 1000, as the SDK assumes.
func Start(opts Options) (*Server, error) {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	s := &Server{
		opts:     opts,
		configs:  make(map[configKey]configItem),
		conns:    make(map[string]*conn),
		tokens:   make(map[string]time.Time),
		requests: make(map[string]int),
	}
	for range 200 {
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("nacostest: listen: %w", err)
		}
		port := hl.Addr().(*net.TCPAddr).Port
		if port+rpcPortOffset > 65535 {
			_ = hl.Close()
			continue
		}
		gl, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+rpcPortOffset))
		if err != nil {
			_ = hl.Close()
			continue
		}
		s.httpPort, s.grpcPort = port, port+rpcPortOffset
		s.serve(hl, gl)
		return s, nil
	}
	return nil, ErrNoPorts
}

// StartT is Start for tests: it fails the test on error and stops the
// server when the test ends.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Host is the server's IP address (always 127.0.0.1).
func (s *Server) Host() string { return "127.0.0.1" }

// HTTPPort is the port to configure in the SDK's ServerConfig.Port.
func (s *Server) HTTPPort() int { return s.httpPort }

// GRPCPort is HTTPPort + 1000.
func (s *Server) GRPCPort() int { return s.grpcPort }

// Addr is "127.0.0.1:HTTPPort", the address a client is pointed at.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.httpPort)) }

func (s *Server) serve(hl, gl net.Listener) {
	gopts := []grpc.ServerOption{
		// The SDK pings every 60s with PermitWithoutStream; allow it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(10 << 20),
	}
	if s.opts.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(s.opts.TLS)))
	}
	gs := grpc.NewServer(gopts...)
	nacosgrpc.RegisterRequestServer(gs, &requestService{s: s})
	nacosgrpc.RegisterBiRequestStreamServer(gs, &biStreamService{s: s})
	hs := &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second}

	s.mu.Lock()
	s.grpcSrv, s.httpSrv, s.running = gs, hs, true
	s.mu.Unlock()
	go func() { _ = gs.Serve(gl) }()
	go func() { _ = hs.Serve(hl) }()
}

// Stop stops the server and drops every connection. The stored configs are
// kept for a later Restart. Stop is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	gs, hs := s.grpcSrv, s.httpSrv
	s.grpcSrv, s.httpSrv, s.running = nil, nil, false
	clear(s.conns)
	s.tokens = make(map[string]time.Time)
	s.mu.Unlock()
	if gs != nil {
		gs.Stop()
	}
	if hs != nil {
		_ = hs.Close()
	}
}

// Restart stops the server, dropping every client connection, and starts it
// again on the same ports with the same configs. Clients must reconnect and
// re-subscribe by themselves.
func (s *Server) Restart() error {
	s.Stop()
	var lastErr error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		hl, err := net.Listen("tcp", s.Addr())
		if err != nil {
			lastErr = err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		gl, err := net.Listen("tcp", net.JoinHostPort(s.Host(), strconv.Itoa(s.grpcPort)))
		if err != nil {
			_ = hl.Close()
			lastErr = err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.serve(hl, gl)
		return nil
	}
	return fmt.Errorf("nacostest: restart: %w", lastErr)
}

// Publish stores content under (namespace, group, dataID) and pushes a
// change notification to every connection listening on it, as a publish
// through the Nacos console would.
func (s *Server) Publish(namespace, group, dataID, content string) {
	s.PublishWithDataKey(namespace, group, dataID, content, "")
}

// PublishWithDataKey is Publish with an encrypted data key stored beside the
// content (Nacos's convention for "cipher-" dataIds).
func (s *Server) PublishWithDataKey(namespace, group, dataID, content, encryptedDataKey string) {
	_ = s.publish(configKey{namespace, group, dataID}, content, encryptedDataKey, "")
}

// Remove deletes (namespace, group, dataID) and notifies its listeners.
func (s *Server) Remove(namespace, group, dataID string) {
	s.remove(configKey{namespace, group, dataID})
}

// Get returns the stored content of (namespace, group, dataID).
func (s *Server) Get(namespace, group, dataID string) (content string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.configs[configKey{namespace, group, dataID}]
	return it.content, ok
}

// Listeners is the number of live client connections subscribed to
// (namespace, group, dataID) through ConfigBatchListenRequest.
func (s *Server) Listeners(namespace, group, dataID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.conns {
		if c.listens[configKey{namespace, group, dataID}] {
			n++
		}
	}
	return n
}

// Connections is the number of live client connections that completed
// connection setup.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Requests is how many requests of the given type (for example
// "ConfigQueryRequest") the server has answered since it was created.
func (s *Server) Requests(requestType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[requestType]
}

// Logins is how many successful HTTP logins the server has answered.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

func md5Hex(content string) string {
	if content == "" {
		return ""
	}
	sum := md5.Sum([]byte(content))
	return hex.EncodeToString(sum[:])
}

func (s *Server) publish(k configKey, content, encryptedDataKey, casMd5 string) error {
	s.mu.Lock()
	if casMd5 != "" {
		if old := s.configs[k]; old.md5 != casMd5 {
			s.mu.Unlock()
			return ErrCASMismatch
		}
	}
	s.configs[k] = configItem{
		content:          content,
		md5:              md5Hex(content),
		encryptedDataKey: encryptedDataKey,
		lastModified:     time.Now().UnixMilli(),
	}
	targets := s.listenersLocked(k)
	s.mu.Unlock()
	s.notify(targets, k)
	return nil
}

func (s *Server) remove(k configKey) {
	s.mu.Lock()
	delete(s.configs, k)
	targets := s.listenersLocked(k)
	s.mu.Unlock()
	s.notify(targets, k)
}

func (s *Server) listenersLocked(k configKey) []*conn {
	var out []*conn
	for _, c := range s.conns {
		if c.listens[k] {
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) newID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return strconv.FormatUint(s.nextID, 10)
}

// errNotRegistered is returned for requests on a connection that never
// completed connection setup.
var errNotRegistered = errors.New("connection is not registered")
