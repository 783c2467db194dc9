package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// app holds the global flags and the lazily built client.
type app struct {
	env       Env
	profile   string
	endpoint  string
	region    string
	credsFile string
	output    string
	timeout   time.Duration
	client    *kmsclient.Client
}

func newRoot(env Env) *cobra.Command {
	a := &app{env: env}
	root := &cobra.Command{
		Use:   "kmsctl",
		Short: "Command-line client for the kmsgo key management service (kmsd)",
		Long: `kmsctl manages master keys, encrypts and decrypts small values, issues data keys,
produces ENC(...) values for config centers (Nacos, etcd), manages access keys and
reads and verifies the audit log of a kmsd server, lists and runs its scheduled jobs
(kmsctl jobs --help), and encrypts existing plaintext database columns for ormplugin
(kmsctl orm --help).

Connection settings are taken from, in order of precedence:
  1. flags: --endpoint, --region, --profile
  2. environment: KMS_ENDPOINT, KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY, KMS_REGION, KMS_PROFILE
  3. the profile in ~/.config/kmsgo/credentials (JSON, mode 0600; KMS_CREDENTIALS_FILE overrides the path)

Quick start against a local "make run" server:
  kmsctl configure --from-file .kmsgo-data/admin-credentials.json
  kmsctl keys create --alias alias/orders
  kmsctl enc --key alias/orders 's3cret-db-password'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			_, err := a.jsonOut()
			return err
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.profile, "profile", "", "profile name in the credentials file (default \"default\", or KMS_PROFILE)")
	pf.StringVar(&a.endpoint, "endpoint", "", "kmsd base URL (default from KMS_ENDPOINT or the profile)")
	pf.StringVar(&a.region, "region", "", "SigV4 region (default from KMS_REGION, the profile, or \"local\")")
	pf.StringVar(&a.credsFile, "credentials-file", "", "credentials file (default ~/.config/kmsgo/credentials)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", kmsclient.DefaultTimeout, "how long to wait for each answer of kmsd (raise it for a long audit verify)")

	root.AddCommand(a.configureCmd(), a.keysCmd(), a.encryptCmd(), a.decryptCmd(), a.datakeyCmd(),
		a.encCmd(), a.accessKeysCmd(), a.auditCmd(), a.ormCmd(), a.fileCmd(), a.configCmd(), a.jobsCmd())
	return root
}

func (a *app) getenv(k string) string {
	if a.env.Getenv == nil {
		return ""
	}
	return a.env.Getenv(k)
}

func (a *app) credentialsPath() (string, error) {
	if a.credsFile != "" {
		return a.credsFile, nil
	}
	return credentialsPath(a.getenv)
}

func (a *app) profileName() string {
	if a.profile != "" {
		return a.profile
	}
	if p := a.getenv("KMS_PROFILE"); p != "" {
		return p
	}
	return "default"
}

// resolveProfile merges flags, environment and the profile file.
func (a *app) resolveProfile() (Profile, error) {
	var p Profile
	path, err := a.credentialsPath()
	if err != nil {
		return p, err
	}
	cf, err := loadProfiles(path)
	if err != nil {
		return p, err
	}
	name := a.profileName()
	p, found := cf.Profiles[name]
	if !found && (a.profile != "" || a.getenv("KMS_PROFILE") != "") {
		return p, fmt.Errorf("profile %q not found in %s", name, path)
	}
	p.Overlay(a.getenv)
	if !a.applyFlags(&p) {
		return p, errNoCredentials
	}
	return p, nil
}

// applyFlags lets --endpoint and --region override p and fills in the
// default endpoint; it reports whether p has an access key and secret.
func (a *app) applyFlags(p *Profile) bool {
	if a.endpoint != "" {
		p.Endpoint = a.endpoint
	}
	if a.region != "" {
		p.Region = a.region
	}
	if p.Endpoint == "" {
		p.Endpoint = defaultEndpoint
	}
	return p.AccessKeyID != "" && p.SecretAccessKey != ""
}

func (a *app) clientFor() (*kmsclient.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	p, err := a.resolveProfile()
	if err != nil {
		return nil, err
	}
	c, err := kmsclient.New(kmsclient.Config{Endpoint: p.Endpoint, AccessKeyID: p.AccessKeyID,
		SecretAccessKey: p.SecretAccessKey, Region: p.Region, UserAgent: "kmsctl", Timeout: a.timeout})
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

func (a *app) jsonOut() (bool, error) {
	switch a.output {
	case "json":
		return true, nil
	case "table", "":
		return false, nil
	}
	return false, fmt.Errorf("unknown output format %q (table or json)", a.output)
}

// emit prints v as indented JSON with -o json, otherwise calls table.
func (a *app) emit(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	js, err := a.jsonOut()
	if err != nil {
		return err
	}
	if js {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// parsePairs turns ["k=v", ...] into a map.
func parsePairs(pairs []string, what string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q must be key=value", what, p)
		}
		m[k] = v
	}
	return m, nil
}

// readInput returns the literal value, the content of file ("-" is
// stdin), or stdin when neither is given.
func (a *app) readInput(cmd *cobra.Command, literal, file string, literalSet bool) ([]byte, error) {
	switch {
	case literalSet:
		return []byte(literal), nil
	case file == "-" || file == "":
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	default:
		return os.ReadFile(file)
	}
}
