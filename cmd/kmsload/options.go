package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Operation names accepted by --ops and used in the report.
const (
	opEncrypt         = "encrypt"
	opDecrypt         = "decrypt"
	opGenerateDataKey = "generate-data-key"
	opHealthz         = "healthz"      // unsigned baseline
	opDescribeKey     = "describe-key" // signed baseline
	opBaseline        = "baseline"     // both baselines
	opGin             = "gin"          // bare gin route of another process (--gin-endpoint)
)

// Protection levels accepted by --protection.
const (
	protSoftware = "SOFTWARE"
	protHSM      = "HSM"
)

// Bounds of the numeric flags.
const (
	maxConcurrency  = 1024
	maxDuration     = 10 * time.Minute
	maxWarmup       = time.Minute
	maxMaxRequests  = 10_000_000
	maxCredFileSize = 64 << 10
)

// options is the validated command line.
type options struct {
	Endpoint        string
	CredentialsFile string
	Region          string
	Ops             []string // expanded, in run order: baselines first
	Protections     []string
	Concurrency     []int
	Duration        time.Duration
	Warmup          time.Duration
	MaxRequests     int
	Timeout         time.Duration
	KeyID           string
	Output          string
	AllowRemote     bool
	KeepKeys        bool
	// GinEndpoint is a bare gin server (cmd/kmsload/ginbase) loaded in the
	// same run as the "gin" baseline; GinPID and ServerPID are the
	// processes whose CPU per operation the report shows.
	GinEndpoint string
	GinPID      int
	ServerPID   int
}

// needsKeys reports whether opts includes an operation that needs a key
// per protection level.
func (o options) needsKeys() bool {
	for _, op := range o.Ops {
		if op != opHealthz && op != opGin {
			return true
		}
	}
	return false
}

// parseArgs parses and validates the command line. It does not read the
// credential file.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("kmsload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var ops, prots, conc string
	fs.StringVar(&o.Endpoint, "endpoint", "http://127.0.0.1:8400", "kmsd base URL (loopback only unless --allow-remote)")
	fs.StringVar(&o.CredentialsFile, "credentials", "", "admin-credentials.json written by kmsd (default: KMS_ACCESS_KEY_ID/KMS_SECRET_ACCESS_KEY)")
	fs.StringVar(&o.Region, "region", "", "SigV4 region (default: from the credentials, else KMS_REGION, else local)")
	fs.StringVar(&ops, "ops", "encrypt,decrypt,generate-data-key,baseline", "operations: encrypt, decrypt, generate-data-key, baseline (= healthz + describe-key), healthz, describe-key")
	fs.StringVar(&prots, "protection", "SOFTWARE,HSM", "key protection levels: SOFTWARE, HSM")
	fs.StringVar(&conc, "concurrency", "1,16,64", "comma-separated numbers of concurrent workers")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "measured time per cell")
	fs.DurationVar(&o.Warmup, "warmup", 500*time.Millisecond, "unrecorded warm-up per cell")
	fs.IntVar(&o.MaxRequests, "max-requests", 1_000_000, "cap on measured requests per cell")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.StringVar(&o.KeyID, "key-id", "", "use this existing key (its protection level) instead of creating keys")
	fs.StringVar(&o.Output, "o", "table", "output format: table or json")
	fs.BoolVar(&o.AllowRemote, "allow-remote", false, "allow a non-loopback endpoint")
	fs.BoolVar(&o.KeepKeys, "keep-keys", false, "do not schedule deletion of the keys kmsload created")
	fs.StringVar(&o.GinEndpoint, "gin-endpoint", "", "a bare gin server (cmd/kmsload/ginbase) to load as the \"gin\" baseline in the same run")
	fs.IntVar(&o.GinPID, "gin-pid", 0, "process id of the gin server, for its CPU per operation")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "process id of kmsd, for its CPU per operation (from /proc/PID/stat)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kmsload [flags]\n\nLoad generator for kmsd on loopback. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	var err error
	if o.Ops, err = parseOps(ops); err != nil {
		return o, err
	}
	if o.Protections, err = parseProtections(prots); err != nil {
		return o, err
	}
	if o.Concurrency, err = parseConcurrency(conc); err != nil {
		return o, err
	}
	switch {
	case o.Duration <= 0 || o.Duration > maxDuration:
		return o, fmt.Errorf("%w: --duration must be in (0, %s]", ErrUsage, maxDuration)
	case o.Warmup < 0 || o.Warmup > maxWarmup:
		return o, fmt.Errorf("%w: --warmup must be in [0, %s]", ErrUsage, maxWarmup)
	case o.MaxRequests <= 0 || o.MaxRequests > maxMaxRequests:
		return o, fmt.Errorf("%w: --max-requests must be in [1, %d]", ErrUsage, maxMaxRequests)
	case o.Timeout <= 0 || o.Timeout > time.Minute:
		return o, fmt.Errorf("%w: --timeout must be in (0, 1m]", ErrUsage)
	case o.Output != "table" && o.Output != "json":
		return o, fmt.Errorf("%w: -o must be table or json", ErrUsage)
	}
	if err := checkEndpoint(o.Endpoint, o.AllowRemote); err != nil {
		return o, err
	}
	o.Endpoint = strings.TrimSuffix(o.Endpoint, "/")
	if o.GinPID < 0 || o.ServerPID < 0 {
		return o, fmt.Errorf("%w: --gin-pid and --server-pid must be process ids", ErrUsage)
	}
	if o.GinEndpoint != "" {
		if err := checkEndpoint(o.GinEndpoint, o.AllowRemote); err != nil {
			return o, err
		}
		o.GinEndpoint = strings.TrimSuffix(o.GinEndpoint, "/")
		if !slices.Contains(o.Ops, opGin) {
			o.Ops = append([]string{opGin}, o.Ops...)
		}
	} else if slices.Contains(o.Ops, opGin) {
		return o, fmt.Errorf("%w: --ops gin needs --gin-endpoint", ErrUsage)
	}
	return o, nil
}

// splitList splits a comma-separated flag value, trimming blanks and
// refusing empty items.
func splitList(name, s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%w: --%s: empty item in %q", ErrUsage, name, s)
		}
		out = append(out, item)
	}
	return out, nil
}

// parseOps expands "baseline" and orders the operations: baselines first
// (their rates are the denominators of the ratios), then the crypto
// operations in the order given. Duplicates are dropped.
func parseOps(s string) ([]string, error) {
	items, err := splitList("ops", s)
	if err != nil {
		return nil, err
	}
	var base, crypto []string
	add := func(list *[]string, op string) {
		if !slices.Contains(*list, op) {
			*list = append(*list, op)
		}
	}
	for _, it := range items {
		switch op := strings.ToLower(it); op {
		case opBaseline:
			add(&base, opHealthz)
			add(&base, opDescribeKey)
		case opHealthz, opDescribeKey, opGin:
			add(&base, op)
		case opEncrypt, opDecrypt, opGenerateDataKey:
			add(&crypto, op)
		default:
			return nil, fmt.Errorf("%w: --ops: unknown operation %q", ErrUsage, it)
		}
	}
	// gin, then healthz, then describe-key whatever the order given.
	rank := map[string]int{opGin: 0, opHealthz: 1, opDescribeKey: 2}
	slices.SortStableFunc(base, func(a, b string) int { return rank[a] - rank[b] })
	return append(base, crypto...), nil
}

func parseProtections(s string) ([]string, error) {
	items, err := splitList("protection", s)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range items {
		p := strings.ToUpper(it)
		if p != protSoftware && p != protHSM {
			return nil, fmt.Errorf("%w: --protection: unknown level %q (SOFTWARE or HSM)", ErrUsage, it)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// parseConcurrency parses "1,16,64" into distinct positive ints, in order.
func parseConcurrency(s string) ([]int, error) {
	items, err := splitList("concurrency", s)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, it := range items {
		n, err := strconv.Atoi(it)
		if err != nil || n < 1 || n > maxConcurrency {
			return nil, fmt.Errorf("%w: --concurrency: %q is not an integer in [1, %d]", ErrUsage, it, maxConcurrency)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// checkEndpoint accepts an http(s) URL without query, fragment or user
// info whose host is loopback (127.0.0.0/8, ::1, localhost), or any host
// when allowRemote is set.
func checkEndpoint(endpoint string, allowRemote bool) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: --endpoint must be an http(s) URL without user info, query or fragment", ErrUsage)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: --endpoint has no host", ErrUsage)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: --endpoint port %q", ErrUsage, port)
		}
	}
	if allowRemote || isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrRemoteEndpoint, host)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// credentials are the SigV4 credentials kmsload signs with.
type credentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Region          string `json:"region"`
}

// String never shows the secret.
func (c credentials) String() string {
	return fmt.Sprintf("credentials{access_key_id:%q region:%q}", c.AccessKeyID, c.Region)
}

// loadCredentials reads the credential file when path is set, else the
// KMS_* environment variables (both through kmsclient's one loader). A file
// readable by group or others is refused, as kmsd writes it 0600.
func loadCredentials(path string, getenv func(string) string) (credentials, error) {
	if path == "" {
		cfg, err := kmsclient.ConfigFromEnv(getenv)
		if err != nil {
			return credentials{}, fmt.Errorf("%w: give --credentials or set KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY", ErrCredentials)
		}
		return credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, Region: cfg.Region}, nil
	}
	p, err := kmsclient.LoadCredentialsFile(path)
	if err != nil {
		return credentials{}, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	return credentials{AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey, Region: p.Region}, nil
}

// parseCredentials decodes the JSON credential document. Error messages
// never quote the input (it holds a secret).
func parseCredentials(raw []byte) (credentials, error) {
	p, err := kmsclient.ParseCredentials(raw)
	if err != nil {
		return credentials{}, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	return credentials{AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey, Region: p.Region}, nil
}
