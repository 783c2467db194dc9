package nacos

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/kmsgo/kmsgo/configcenter"
)

// DefaultGroup is Nacos's default group.
const DefaultGroup = "DEFAULT_GROUP"

// Config says where a Source reads from. Credentials for Nacos itself must
// come from the environment or a local file, never from Nacos.
type Config struct {
	// Servers are the Nacos servers' HTTP addresses, "host:port" or
	// "http(s)://host:port". The SDK talks gRPC to port + 1000 and
	// round-robins over the servers when one fails.
	Servers []string
	// Namespace is the namespace id ("" is the public namespace).
	Namespace string
	// Group defaults to DEFAULT_GROUP.
	Group string
	// DataIDs are read in this order; a later one wins when merged.
	DataIDs []string
	// Formats sets the format of a dataId explicitly; a dataId not listed
	// here gets its format from its suffix (.yaml, .yml, .json,
	// .properties, .toml).
	Formats map[string]configcenter.Format

	// Username and Password enable Nacos auth (the SDK logs in over HTTP).
	Username, Password string
	// AccessKey and SecretKey enable AK/SK request signing.
	AccessKey, SecretKey string
	// TLS, when set, makes the SDK talk gRPC over TLS.
	TLS *TLS

	// Dir is required: the SDK's cache goes to Dir/cache and its log file
	// to Dir/log, both created with mode 0700.
	Dir string
	// Timeout bounds each request to Nacos (default 10s).
	Timeout time.Duration
	// SnapshotFallback lets a read fall back to the SDK's disk snapshot
	// when no server answers. Off by default: start-up fails instead.
	SnapshotFallback bool
	// AllowFailover lets the SDK's "<key>_failover" files in the cache dir
	// override the server, as the SDK does by default. Off by default: a
	// failover file is an error.
	AllowFailover bool
	// AppName is reported to Nacos.
	AppName string
	// ResyncInterval is how often Watch re-reads every dataId even without
	// a change notification (default 1m; negative disables). It bounds the
	// effect of a lost push: the SDK can drop a notification that arrives
	// while it is still handling the answer to its own batch listen
	// (config_client.executeConfigListen overwrites isSyncWithServer), and
	// then only its 5-minute full sync would catch the change.
	ResyncInterval time.Duration

	// Logger receives the SDK's log lines, redacted (see the package
	// comment). Default: discarded. The SDK's logger is process-wide, so
	// the last Source created in a process decides where it goes.
	Logger *slog.Logger
	// LogLevel is the lowest SDK level passed on (default slog.LevelWarn).
	LogLevel *slog.Level
}

// TLS configures gRPC over TLS.
type TLS struct {
	// CAFile is a PEM bundle added to the system roots to verify the server.
	CAFile string
	// CertFile and KeyFile are a client certificate for mutual TLS.
	CertFile, KeyFile string
	// InsecureSkipVerify disables server verification (tests only).
	InsecureSkipVerify bool
}

// String describes c without its password and secret key.
func (c Config) String() string {
	red := func(s string) string {
		if s == "" {
			return ""
		}
		return "REDACTED"
	}
	return fmt.Sprintf("nacos.Config{Servers:%v Namespace:%q Group:%q DataIDs:%v Username:%q Password:%s AccessKey:%q SecretKey:%s Dir:%q}",
		c.Servers, c.Namespace, c.Group, c.DataIDs, c.Username, red(c.Password), c.AccessKey, red(c.SecretKey), c.Dir)
}

// GoString is String, so that %#v does not print the secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the secrets out of slog output.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Source is a configcenter.Source reading dataIds from Nacos.
type Source struct {
	cfg       Config
	client    config_client.IConfigClient
	cacheDir  string // Dir/cache
	configDir string // Dir/cache/config: where the SDK's config client writes
	logDir    string

	mu       sync.Mutex
	content  map[string]string // dataId -> last content read
	loaded   bool
	lastRev  string
	watching bool

	closeOnce sync.Once
	closed    chan struct{}
	// fetchMu guards fetching against Close: every SDK read runs while
	// fetching counts it, and Close waits for them (bounded by Timeout)
	// before it shuts the SDK client down. nacos-sdk-go's RpcClient reads
	// its status without synchronization while a failing request changes
	// it, so a read left running across CloseClient races with the SDK's
	// own listen loop.
	fetchMu  sync.Mutex
	fetching sync.WaitGroup
	stopping bool
}

var _ configcenter.Source = (*Source)(nil)

// New checks cfg, prepares the private cache and log directories and creates
// the SDK client. It does not contact Nacos unless username/password auth is
// configured (the SDK logs in at creation).
func New(cfg Config) (*Source, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	servers, err := serverConfigs(cfg.Servers)
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg:       cfg,
		cacheDir:  filepath.Join(cfg.Dir, "cache"),
		configDir: filepath.Join(cfg.Dir, "cache", "config"),
		logDir:    filepath.Join(cfg.Dir, "log"),
		content:   make(map[string]string),
		closed:    make(chan struct{}),
	}
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if err := s.checkFailover(); err != nil {
		return nil, err
	}

	cc := constant.ClientConfig{
		NamespaceId:         cfg.Namespace,
		TimeoutMs:           uint64(cfg.Timeout / time.Millisecond),
		CacheDir:            s.cacheDir,
		LogDir:              s.logDir,
		LogLevel:            "error", // until the redacting logger replaces the SDK's own
		DisableUseSnapShot:  !cfg.SnapshotFallback,
		NotLoadCacheAtStart: true,
		Username:            cfg.Username,
		Password:            cfg.Password,
		AccessKey:           cfg.AccessKey,
		SecretKey:           cfg.SecretKey,
		AppName:             cfg.AppName,
		// Appointed: never let nacos_remote_client_rpc_tls_* environment
		// variables change the transport behind the caller's back.
		TLSCfg: constant.TLSConfig{Appointed: true},
	}
	if cfg.TLS != nil {
		cc.TLSCfg.Enable = true
		cc.TLSCfg.TrustAll = cfg.TLS.InsecureSkipVerify
		cc.TLSCfg.CaFile = cfg.TLS.CAFile
		cc.TLSCfg.CertFile = cfg.TLS.CertFile
		cc.TLSCfg.KeyFile = cfg.TLS.KeyFile
	}
	level := slog.LevelWarn
	if cfg.LogLevel != nil {
		level = *cfg.LogLevel
	}

	clientMu.Lock()
	client, err := clients.NewConfigClient(vo.NacosClientParam{ClientConfig: &cc, ServerConfigs: servers})
	installSafeLogger(cfg.Logger, level)
	clientMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: create client: %v", ErrConfig, err)
	}
	s.client = client
	s.tighten()
	return s, nil
}

func validate(cfg *Config) error {
	if len(cfg.Servers) == 0 {
		return fmt.Errorf("%w: no Servers", ErrConfig)
	}
	if len(cfg.DataIDs) == 0 {
		return fmt.Errorf("%w: no DataIDs", ErrConfig)
	}
	if cfg.Dir == "" {
		return fmt.Errorf("%w: Dir is required (the SDK's cache and log directory)", ErrConfig)
	}
	seen := make(map[string]bool, len(cfg.DataIDs))
	for _, id := range cfg.DataIDs {
		if id == "" || strings.ContainsAny(id, "/\\") {
			return fmt.Errorf("%w: bad dataId %q", ErrConfig, id)
		}
		if seen[id] {
			return fmt.Errorf("%w: dataId %q listed twice", ErrConfig, id)
		}
		seen[id] = true
	}
	for id, f := range cfg.Formats {
		if !seen[id] {
			return fmt.Errorf("%w: format given for unknown dataId %q", ErrConfig, id)
		}
		switch f {
		case configcenter.FormatYAML, configcenter.FormatJSON, configcenter.FormatProperties, configcenter.FormatTOML, "":
		default:
			return fmt.Errorf("%w: unknown format %q for dataId %q", ErrConfig, f, id)
		}
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = time.Minute
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return fmt.Errorf("%w: Username and Password go together", ErrConfig)
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return fmt.Errorf("%w: AccessKey and SecretKey go together", ErrConfig)
	}
	if t := cfg.TLS; t != nil {
		// The SDK calls log.Fatalf on an unreadable client certificate and
		// ignores a bad CA file: check both here instead.
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return fmt.Errorf("%w: TLS CAFile: %v", ErrConfig, err)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				return fmt.Errorf("%w: TLS CAFile holds no PEM certificate", ErrConfig)
			}
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			return fmt.Errorf("%w: TLS CertFile and KeyFile go together", ErrConfig)
		}
		if t.CertFile != "" {
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				return fmt.Errorf("%w: TLS client certificate: %v", ErrConfig, err)
			}
		}
	}
	return nil
}

func serverConfigs(addrs []string) ([]constant.ServerConfig, error) {
	out := make([]constant.ServerConfig, 0, len(addrs))
	for _, a := range addrs {
		scheme := "http"
		rest := a
		if i := strings.Index(a, "://"); i >= 0 {
			scheme, rest = a[:i], a[i+3:]
		}
		if scheme != "http" && scheme != "https" {
			return nil, fmt.Errorf("%w: server %q: scheme must be http or https", ErrConfig, a)
		}
		host, portStr, err := net.SplitHostPort(strings.TrimSuffix(rest, "/"))
		if err != nil {
			return nil, fmt.Errorf("%w: server %q: %v", ErrConfig, a, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || port == 0 || port+constant.RpcPortOffset > 65535 {
			return nil, fmt.Errorf("%w: server %q: bad port", ErrConfig, a)
		}
		if host == "" || strings.ContainsAny(host, "/?#@ \t\r\n") {
			return nil, fmt.Errorf("%w: server %q: bad host", ErrConfig, a)
		}
		out = append(out, constant.ServerConfig{Scheme: scheme, IpAddr: host, Port: port, ContextPath: "/nacos"})
	}
	return out, nil
}

// Name identifies the source in logs.
func (s *Source) Name() string {
	ns := s.cfg.Namespace
	if ns == "" {
		ns = "public"
	}
	return "nacos:" + ns + "/" + s.cfg.Group + "/" + strings.Join(s.cfg.DataIDs, ",")
}

// Load reads every dataId from Nacos and returns the complete state.
func (s *Source) Load(ctx context.Context) (configcenter.State, error) {
	if s.isClosed() {
		return configcenter.State{}, ErrClosed
	}
	fresh := make(map[string]string, len(s.cfg.DataIDs))
	for _, id := range s.cfg.DataIDs {
		c, err := s.fetch(ctx, id)
		if err != nil {
			return configcenter.State{}, err
		}
		fresh[id] = c
	}
	s.tighten()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.content = fresh
	st := s.stateLocked()
	s.loaded, s.lastRev = true, st.Revision
	return st, nil
}

// fetch reads one dataId, honouring ctx (the SDK call itself is bounded by
// Config.Timeout and finishes in the background if ctx ends first).
func (s *Source) fetch(ctx context.Context, dataID string) (string, error) {
	if !s.cfg.AllowFailover {
		if _, err := os.Lstat(s.failoverPath(dataID)); err == nil {
			return "", fmt.Errorf("%w: dataId %q has %s", ErrFailoverFile, dataID, filepath.Base(s.failoverPath(dataID)))
		}
	}
	type result struct {
		content string
		err     error
	}
	ch := make(chan result, 1)
	s.fetchMu.Lock()
	if s.stopping {
		s.fetchMu.Unlock()
		return "", ErrClosed
	}
	s.fetching.Add(1)
	s.fetchMu.Unlock()
	go func() {
		defer s.fetching.Done()
		c, err := s.client.GetConfig(vo.ConfigParam{DataId: dataID, Group: s.cfg.Group})
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			// The SDK's error text names the server and dataId, not content.
			return "", fmt.Errorf("%w: dataId %q: %v", ErrFetch, dataID, r.err)
		}
		return r.content, nil
	case <-ctx.Done():
		return "", fmt.Errorf("%w: dataId %q: %w", ErrFetch, dataID, ctx.Err())
	case <-s.closed:
		return "", ErrClosed
	}
}

// stateLocked builds the State from s.content. A dataId that does not exist
// (or is empty) in Nacos contributes no Document.
func (s *Source) stateLocked() configcenter.State {
	st := configcenter.State{Docs: make([]configcenter.Document, 0, len(s.cfg.DataIDs))}
	h := sha256.New()
	for _, id := range s.cfg.DataIDs {
		c := s.content[id]
		fmt.Fprintf(h, "%s\x00%d\x00", id, len(c))
		h.Write([]byte(c))
		if c == "" {
			continue
		}
		st.Docs = append(st.Docs, configcenter.Document{Name: id, Format: s.cfg.Formats[id], Data: []byte(c)})
	}
	st.Revision = hex.EncodeToString(h.Sum(nil)[:12])
	return st
}

// Watch subscribes to every dataId and calls onChange with each later
// complete state, from this goroutine, in order and never twice for the same
// revision, until ctx is done or Close is called. A change notification makes
// the Source read the dataId again from the server, so a burst of changes
// ends in the latest state even though the SDK calls its listeners from
// unordered goroutines. Reads that fail go to onError and are retried.
func (s *Source) Watch(ctx context.Context, onChange func(configcenter.State), onError func(error)) error {
	if onChange == nil {
		onChange = func(configcenter.State) {}
	}
	if onError == nil {
		onError = func(error) {}
	}
	s.mu.Lock()
	if s.watching {
		s.mu.Unlock()
		return ErrWatching
	}
	s.watching = true
	loaded := s.loaded
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.watching = false
		s.mu.Unlock()
	}()
	if s.isClosed() {
		return nil
	}
	if !loaded {
		if _, err := s.Load(ctx); err != nil {
			return err
		}
	}

	var (
		dirtyMu sync.Mutex
		dirty   = make(map[string]bool)
		wake    = make(chan struct{}, 1)
	)
	mark := func(id string) {
		dirtyMu.Lock()
		dirty[id] = true
		dirtyMu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	for _, id := range s.cfg.DataIDs {
		err := s.client.ListenConfig(vo.ConfigParam{
			DataId: id, Group: s.cfg.Group,
			// The content is ignored on purpose: it is re-read in order.
			OnChange: func(_, _, dataID, _ string) { mark(dataID) },
		})
		if err != nil {
			return fmt.Errorf("%w: listen dataId %q: %v", ErrFetch, id, err)
		}
	}
	defer func() {
		for _, id := range s.cfg.DataIDs {
			_ = s.client.CancelListenConfig(vo.ConfigParam{DataId: id, Group: s.cfg.Group})
		}
	}()

	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var resync <-chan time.Time
	if s.cfg.ResyncInterval > 0 {
		tk := time.NewTicker(s.cfg.ResyncInterval)
		defer tk.Stop()
		resync = tk.C
	}
	backoff := 200 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closed:
			return nil
		case <-wake:
		case <-retry.C:
		case <-resync:
			for _, id := range s.cfg.DataIDs {
				mark(id)
			}
		}
		dirtyMu.Lock()
		ids := make([]string, 0, len(dirty))
		for _, id := range s.cfg.DataIDs { // keep the configured order
			if dirty[id] {
				ids = append(ids, id)
			}
		}
		clear(dirty)
		dirtyMu.Unlock()

		fresh := make(map[string]string, len(ids))
		var failed []string
		for _, id := range ids {
			c, err := s.fetch(ctx, id)
			if err != nil {
				if ctx.Err() != nil || s.isClosed() {
					return nil
				}
				onError(err)
				failed = append(failed, id)
				continue
			}
			fresh[id] = c
		}
		s.tighten()
		if len(failed) > 0 {
			for _, id := range failed {
				mark(id)
			}
			// mark woke us already; wait for the backoff instead.
			select {
			case <-wake:
			default:
			}
			retry.Reset(backoff)
			backoff = min(backoff*2, 10*time.Second)
		} else {
			backoff = 200 * time.Millisecond
		}
		if len(fresh) == 0 {
			continue
		}
		s.mu.Lock()
		for id, c := range fresh {
			s.content[id] = c
		}
		st := s.stateLocked()
		changed := st.Revision != s.lastRev
		s.lastRev = st.Revision
		s.mu.Unlock()
		if changed {
			onChange(st)
		}
	}
}

// Close shuts the SDK client down and stops Watch. It is safe to call more
// than once.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.fetchMu.Lock()
		s.stopping = true
		s.fetchMu.Unlock()
		done := make(chan struct{})
		go func() { s.fetching.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(s.cfg.Timeout):
		}
		s.client.CloseClient()
		s.tighten()
	})
	return nil
}

func (s *Source) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}
