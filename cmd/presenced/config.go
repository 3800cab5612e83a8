package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/names"
	"github.com/presenced/presenced/internal/redact"
	"github.com/presenced/presenced/storage/cluster"
	"github.com/presenced/presenced/views/httpapi"
	"github.com/presenced/presenced/views/webhook"
)

// Config is presenced's configuration, read from PRESENCED_* environment
// variables. Every field is listed with its default in the README. As with
// caarlos0/env, a variable set to the empty string takes its default.
type Config struct {
	AGIListen         string        `env:"AGI_LISTEN" envDefault:"127.0.0.1:4573"`
	AGIAllow          string        `env:"AGI_ALLOW" envDefault:"127.0.0.0/8,::1/128"`
	AGIMaxSessions    int           `env:"AGI_MAX_SESSIONS" envDefault:"1024"`
	AGIEnvTimeout     time.Duration `env:"AGI_ENV_TIMEOUT" envDefault:"5s"`
	AGICommandTimeout time.Duration `env:"AGI_COMMAND_TIMEOUT" envDefault:"10s"`
	WriteBudget       time.Duration `env:"WRITE_BUDGET" envDefault:"2s"`
	HTTPListen        string        `env:"HTTP_LISTEN" envDefault:"127.0.0.1:4574"`
	DataDir           string        `env:"DATA_DIR" envDefault:"./data"`
	Dialplan          string        `env:"DIALPLAN"`
	Roster            string        `env:"ROSTER"`
	XucUsers          string        `env:"XUC_USERS"`
	AppwsApps         string        `env:"APPWS_APPS"`
	Phones            string        `env:"PHONES"`
	DPMA              string        `env:"DPMA" envDefault:"off"`
	ARIURL            string        `env:"ARI_URL" envDefault:"http://127.0.0.1:8088/ari"`
	ARIUser           string        `env:"ARI_USER"`
	ARIPassword       string        `env:"ARI_PASSWORD"`
	ARIApp            string        `env:"ARI_APP" envDefault:"presenced"`
	AMIAddr           string        `env:"AMI_ADDR" envDefault:"127.0.0.1:5038"`
	AMIUser           string        `env:"AMI_USER"`
	AMISecret         string        `env:"AMI_SECRET"`
	APITokens         string        `env:"API_TOKENS"`
	APITokensFile     string        `env:"API_TOKENS_FILE"`
	PresenceHistory   int           `env:"PRESENCE_HISTORY" envDefault:"20"`
	WebhookTimeout    time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s"`
	WebhookRetryMax   time.Duration `env:"WEBHOOK_RETRY_MAX" envDefault:"5m"`
	LogRetention      uint64        `env:"LOG_RETENTION" envDefault:"100000"`
	WebhookBacklog    uint64        `env:"WEBHOOK_BACKLOG"` // the older name of LOG_RETENTION
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
	LogLevel          string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat         string        `env:"LOG_FORMAT" envDefault:"json"`
	HTTPAllowedHosts  string        `env:"HTTP_ALLOWED_HOSTS"`
	HTTPAllowedOrigin string        `env:"HTTP_ALLOWED_ORIGINS"`
	HTTPMaxConns      int           `env:"HTTP_MAX_CONNS" envDefault:"16384"`
	HTTPBodyTimeout   time.Duration `env:"HTTP_BODY_TIMEOUT" envDefault:"10s"`
	TrustedProxies    string        `env:"TRUSTED_PROXIES"`
	WebhookAllow      string        `env:"WEBHOOK_ALLOW" envDefault:"loopback,private"`
	NATSURL           string        `env:"NATS_URL"`
	ClusterListen     string        `env:"CLUSTER_LISTEN"`
	ClusterPeers      string        `env:"CLUSTER_PEERS"`
	NATSListen        string        `env:"NATS_LISTEN" envDefault:"127.0.0.1:4222"`
	ClusterReplicas   int           `env:"CLUSTER_REPLICAS"`
	ClusterSecretFile string        `env:"CLUSTER_SECRET_FILE"`
	ClusterTLSCert    string        `env:"CLUSTER_TLS_CERT"`
	ClusterTLSKey     string        `env:"CLUSTER_TLS_KEY"`
	ClusterTLSCA      string        `env:"CLUSTER_TLS_CA"`
	NATSCreds         string        `env:"NATS_CREDS"`
	NATSNkey          string        `env:"NATS_NKEY"`
	Node              string        `env:"NODE"`
	Site              string        `env:"SITE"`
	RemoteContext     string        `env:"REMOTE_CONTEXT" envDefault:"default"`
	DialContext       string        `env:"DIAL_CONTEXT" envDefault:"default"`
	DialAllow         string        `env:"DIAL_ALLOW"`
	DialDeny          string        `env:"DIAL_DENY"`
	Demo              bool          `env:"DEMO"`

	allow    []netip.Prefix
	proxies  []netip.Prefix
	logLevel zerolog.Level
	tokens   *httpapi.Tokens
	hosts    []string
	origins  []string
	targets  webhook.TargetPolicy
	peers    []string
	dial     *calls.Policy
	security cluster.Security
	// redact removes the configured secrets from everything shown.
	redact *redact.Redactor
}

// missing says, for AMI and ARI, which is not configured and what it
// would bring: the log says it at start.
func (c Config) missing() []string {
	var out []string
	if !c.hasAMI() {
		out = append(out, "AMI is not configured: set PRESENCED_AMI_USER and PRESENCED_AMI_SECRET (a manager.conf user) for presence changed on phones, the running dialplan's hints, calls, voicemail, and timed presence ending in Asterisk on time.")
	}
	if !c.hasARI() {
		out = append(out, "ARI is not configured: set PRESENCED_ARI_USER and PRESENCED_ARI_PASSWORD (an ari.conf user) for device states and DND on every BLF key.")
	}
	return out
}

// setup says what to do next when presenced runs without Asterisk at all
// (neither AMI nor ARI): the board shows it, the log says it at start.
func (c Config) setup() []string {
	if c.hasAMI() || c.hasARI() {
		return nil
	}
	return append(c.missing(), "The README's \"Five minutes with Asterisk\" has every snippet; presenced config check checks the settings. To try presenced without a PBX: make demo.")
}

// hasAMI and hasARI report whether AMI and ARI are configured.
func (c Config) hasAMI() bool { return c.AMIAddr != "" && c.AMIUser != "" }
func (c Config) hasARI() bool { return c.ARIURL != "" && c.ARIUser != "" }

// ConfigError is a bad setting: presenced stops with exit status 2 and
// names the variable. Open returns one too when a setting that looked
// right cannot be used (a listen address in use, a file gone).
type ConfigError struct {
	Var string // without the prefix: "AGI_LISTEN"
	Err error
}

func (e *ConfigError) Error() string { return envPrefix + e.Var + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func bad(name, format string, args ...any) error {
	return &ConfigError{Var: name, Err: fmt.Errorf(format, args...)}
}

// envPrefix is the prefix of every variable.
const envPrefix = "PRESENCED_"

// LoadConfig reads the configuration from environ ("NAME=value" pairs) and
// checks it: a bad value is an error naming the variable, never a silent
// default.
func LoadConfig(environ []string) (Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: envPrefix, Environment: vars}); err != nil {
		return Config{}, describeEnvError(err)
	}
	// caarlos0/env gives an empty variable its default; for these, set but
	// empty means "none" (DESIGN.md: "empty: no AMI").
	if v, ok := vars[envPrefix+"AMI_ADDR"]; ok && v == "" {
		c.AMIAddr = ""
	}
	if v, ok := vars[envPrefix+"ARI_URL"]; ok && v == "" {
		c.ARIURL = ""
	}
	if v, ok := vars[envPrefix+"HTTP_LISTEN"]; ok && v == "" {
		c.HTTPListen = ""
	}
	if v, ok := vars[envPrefix+"WEBHOOK_ALLOW"]; ok && v == "" {
		c.WebhookAllow = "none"
	}
	if _, ok := vars[envPrefix+"LOG_RETENTION"]; !ok && c.WebhookBacklog != 0 {
		c.LogRetention = c.WebhookBacklog // set under its older name only
	}
	return c, c.check()
}

// describeEnvError names the variable in env's parse errors, which name
// the Go field ("AGIMaxSessions") that an admin never sees.
func describeEnvError(err error) error {
	var agg env.AggregateError
	if errors.As(err, &agg) {
		for _, e := range agg.Errors {
			var pe env.ParseError
			if errors.As(e, &pe) {
				if f, ok := reflect.TypeOf(Config{}).FieldByName(pe.Name); ok {
					return &ConfigError{Var: f.Tag.Get("env"), Err: pe.Err}
				}
			}
		}
	}
	return fmt.Errorf("reading the configuration: %w", err)
}

func (c *Config) check() error {
	allow, err := ParseAllow(c.AGIAllow)
	if err != nil {
		return &ConfigError{Var: "AGI_ALLOW", Err: err}
	}
	c.allow = allow
	if c.AGIMaxSessions < 1 {
		return bad("AGI_MAX_SESSIONS", "must be at least 1")
	}
	if c.HTTPMaxConns < 16 {
		return bad("HTTP_MAX_CONNS", "must be at least 16")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"AGI_ENV_TIMEOUT", c.AGIEnvTimeout}, {"AGI_COMMAND_TIMEOUT", c.AGICommandTimeout}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"WEBHOOK_TIMEOUT", c.WebhookTimeout}, {"WEBHOOK_RETRY_MAX", c.WebhookRetryMax}, {"HTTP_BODY_TIMEOUT", c.HTTPBodyTimeout},
		{"WRITE_BUDGET", c.WriteBudget}} {
		if d.d <= 0 {
			return bad(d.name, "must be a positive duration such as 5s")
		}
	}
	if c.WebhookRetryMax < time.Second {
		return bad("WEBHOOK_RETRY_MAX", "must be at least 1s (retries start at 1s)")
	}
	if c.WebhookBacklog != 0 && c.WebhookBacklog < 100 {
		return bad("WEBHOOK_BACKLOG", "must be at least 100")
	}
	if c.LogRetention < 100 {
		return bad("LOG_RETENTION", "must be at least 100")
	}
	if c.PresenceHistory < 1 || c.PresenceHistory > 1000 {
		return bad("PRESENCE_HISTORY", "must be between 1 and 1000")
	}
	if err := checkListen(c.AGIListen); err != nil {
		return &ConfigError{Var: "AGI_LISTEN", Err: err}
	}
	if c.HTTPListen != "" {
		if err := checkListen(c.HTTPListen); err != nil {
			return &ConfigError{Var: "HTTP_LISTEN", Err: err}
		}
	}
	if c.AMIAddr != "" {
		if err := checkDial(c.AMIAddr); err != nil {
			return &ConfigError{Var: "AMI_ADDR", Err: err}
		}
	}
	if strings.ContainsAny(c.AMIUser, "\r\n") {
		return bad("AMI_USER", "must not contain line breaks")
	}
	if strings.ContainsAny(c.AMISecret, "\r\n") {
		return bad("AMI_SECRET", "must not contain line breaks")
	}
	if c.ARIURL != "" {
		u, err := url.Parse(c.ARIURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return bad("ARI_URL", "%q is not an http(s) URL like http://127.0.0.1:8088/ari", redact.New().String(c.ARIURL))
		case u.User != nil:
			// A password in the URL would be shown wherever the URL is.
			return bad("ARI_URL", "must not hold credentials: set PRESENCED_ARI_USER and PRESENCED_ARI_PASSWORD")
		case u.RawQuery != "" || u.Fragment != "":
			return bad("ARI_URL", "must not have a query or fragment")
		}
		if err := checkDial(u.Host); err != nil && u.Port() != "" {
			return &ConfigError{Var: "ARI_URL", Err: err}
		}
	}
	if c.ARIApp == "" {
		return bad("ARI_APP", "must not be empty")
	}
	if !names.Valid(c.ARIApp) {
		return bad("ARI_APP", "%q may contain only letters, digits, dash, underscore and dot (at most 64)", c.ARIApp)
	}
	tokens, err := c.loadTokens()
	if err != nil {
		return err
	}
	c.tokens = tokens
	if c.DataDir == "" {
		return bad("DATA_DIR", "must not be empty")
	}
	if fi, err := os.Stat(c.DataDir); err == nil && !fi.IsDir() {
		return bad("DATA_DIR", "%s is a file, not a directory", c.DataDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &ConfigError{Var: "DATA_DIR", Err: err}
	}
	for _, f := range []struct{ name, path string }{{"DIALPLAN", c.Dialplan}, {"ROSTER", c.Roster}, {"XUC_USERS", c.XucUsers}, {"APPWS_APPS", c.AppwsApps}, {"PHONES", c.Phones}} {
		if f.path == "" {
			continue
		}
		if err := checkFile(f.path); err != nil {
			return &ConfigError{Var: f.name, Err: err}
		}
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(c.LogLevel))
	if err != nil || c.LogLevel == "" || lvl == zerolog.NoLevel {
		return bad("LOG_LEVEL", "%q is not one of trace, debug, info, warn, error", c.LogLevel)
	}
	c.logLevel = lvl
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return bad("LOG_FORMAT", "%q is not json or console", c.LogFormat)
	}
	if strings.TrimSpace(c.TrustedProxies) != "" {
		if c.proxies, err = ParseAllow(c.TrustedProxies); err != nil {
			return &ConfigError{Var: "TRUSTED_PROXIES", Err: err}
		}
	}
	if c.hosts, err = httpapi.ParseHosts(c.HTTPAllowedHosts); err != nil {
		return &ConfigError{Var: "HTTP_ALLOWED_HOSTS", Err: err}
	}
	if c.origins, err = httpapi.ParseOrigins(c.HTTPAllowedOrigin); err != nil {
		return &ConfigError{Var: "HTTP_ALLOWED_ORIGINS", Err: err}
	}
	if c.targets, err = webhook.ParseTargetPolicy(c.WebhookAllow); err != nil {
		return &ConfigError{Var: "WEBHOOK_ALLOW", Err: err}
	}
	if err := c.checkCluster(); err != nil {
		return err
	}
	c.redact = redact.New(c.ARIPassword, c.AMISecret, c.security.Secret)
	return nil
}

// checkClusterSecurity reads the cluster's secret and checks its TLS
// files, and refuses a cluster that anything beyond loopback can reach
// without both: whoever reaches an open route or client port reads every
// webhook's secret and plants forwards the dialplan dials.
func (c *Config) checkClusterSecurity() error {
	sec := cluster.Security{CertFile: c.ClusterTLSCert, KeyFile: c.ClusterTLSKey, CAFile: c.ClusterTLSCA,
		CredsFile: c.NATSCreds, NkeyFile: c.NATSNkey}
	if c.ClusterSecretFile != "" {
		secret, err := cluster.ReadSecret(c.ClusterSecretFile)
		if err != nil {
			return &ConfigError{Var: "CLUSTER_SECRET_FILE", Err: err}
		}
		sec.Secret = secret
	}
	if !c.Clustered() {
		if sec != (cluster.Security{}) {
			return bad("CLUSTER_SECRET_FILE", "the cluster's secret, TLS and NATS credentials are for a cluster: set PRESENCED_NATS_URL or PRESENCED_CLUSTER_LISTEN too")
		}
		return nil
	}
	if (c.ClusterTLSCert == "") != (c.ClusterTLSKey == "") {
		return bad("CLUSTER_TLS_KEY", "give the node's certificate (PRESENCED_CLUSTER_TLS_CERT) and its key (PRESENCED_CLUSTER_TLS_KEY) together")
	}
	for _, f := range []struct{ name, path string }{{"CLUSTER_TLS_CERT", c.ClusterTLSCert}, {"CLUSTER_TLS_KEY", c.ClusterTLSKey},
		{"CLUSTER_TLS_CA", c.ClusterTLSCA}, {"NATS_CREDS", c.NATSCreds}, {"NATS_NKEY", c.NATSNkey}} {
		if f.path != "" {
			if err := checkFile(f.path); err != nil {
				return &ConfigError{Var: f.name, Err: err}
			}
		}
	}
	if c.NATSCreds != "" && c.NATSNkey != "" {
		return bad("NATS_NKEY", "give a creds file (PRESENCED_NATS_CREDS) or an nkey seed (PRESENCED_NATS_NKEY), not both")
	}
	if c.ClusterListen != "" {
		if c.NATSCreds != "" || c.NATSNkey != "" {
			return bad("NATS_CREDS", "creds files and nkeys log in to an existing NATS (PRESENCED_NATS_URL); the embedded servers share PRESENCED_CLUSTER_SECRET_FILE")
		}
		if err := sec.Check(); err != nil {
			return &ConfigError{Var: "CLUSTER_TLS_CERT", Err: err}
		}
		chost, _, _ := net.SplitHostPort(c.ClusterListen)
		nhost, _, _ := net.SplitHostPort(c.NATSListen)
		if !cluster.Loopback(chost) || !cluster.Loopback(nhost) {
			if sec.Secret == "" {
				return bad("CLUSTER_SECRET_FILE", "the embedded NATS server listens beyond loopback (%s, %s): give the nodes a shared secret (a file with `openssl rand -hex 32`)", c.ClusterListen, c.NATSListen)
			}
			if c.ClusterTLSCert == "" {
				return bad("CLUSTER_TLS_CERT", "the embedded NATS server listens beyond loopback (%s, %s): give it TLS (PRESENCED_CLUSTER_TLS_CERT, _KEY and the cluster's _CA)", c.ClusterListen, c.NATSListen)
			}
		}
	}
	if c.NATSURL != "" {
		if c.ClusterTLSCert != "" && c.ClusterTLSCA == "" {
			return bad("CLUSTER_TLS_CA", "a client certificate for NATS needs the CA that checks the server (PRESENCED_CLUSTER_TLS_CA)")
		}
		for _, raw := range strings.Split(c.NATSURL, ",") {
			u, _ := url.Parse(strings.TrimSpace(raw))
			if cluster.Loopback(u.Hostname()) {
				continue
			}
			if u.User == nil && sec.Secret == "" && c.NATSCreds == "" && c.NATSNkey == "" {
				return bad("NATS_CREDS", "NATS at %s is beyond loopback: log in to it (PRESENCED_NATS_CREDS, PRESENCED_NATS_NKEY, PRESENCED_CLUSTER_SECRET_FILE, or user:password in the URL)", u.Host)
			}
			if u.Scheme != "tls" && c.ClusterTLSCA == "" {
				return bad("CLUSTER_TLS_CA", "NATS at %s is beyond loopback: reach it over TLS (a tls:// URL, or the CA that signed its certificate in PRESENCED_CLUSTER_TLS_CA)", u.Host)
			}
		}
	}
	c.security = sec
	return nil
}

// Clustered reports whether presenced runs as a node of a cluster (on
// NATS JetStream) rather than alone.
func (c *Config) Clustered() bool { return c.NATSURL != "" || c.ClusterListen != "" }

// checkCluster checks the cluster's settings: an existing NATS
// (PRESENCED_NATS_URL) or an embedded server joining its peers
// (PRESENCED_CLUSTER_LISTEN, PRESENCED_CLUSTER_PEERS), not both.
func (c *Config) checkCluster() error {
	if c.NATSURL != "" && c.ClusterListen != "" {
		return bad("NATS_URL", "give either an existing NATS (PRESENCED_NATS_URL) or an embedded one (PRESENCED_CLUSTER_LISTEN), not both")
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
				return bad("NATS_URL", "%q is not a NATS URL like nats://10.0.0.5:4222", redact.New().String(u))
			}
		}
	}
	if c.ClusterListen != "" {
		if err := checkListen(c.ClusterListen); err != nil {
			return &ConfigError{Var: "CLUSTER_LISTEN", Err: err}
		}
		if err := checkListen(c.NATSListen); err != nil {
			return &ConfigError{Var: "NATS_LISTEN", Err: err}
		}
	}
	for _, p := range strings.Split(c.ClusterPeers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if err := checkDial(p); err != nil {
			return &ConfigError{Var: "CLUSTER_PEERS", Err: err}
		}
		c.peers = append(c.peers, p)
	}
	if len(c.peers) > 0 && c.ClusterListen == "" {
		return bad("CLUSTER_PEERS", "peers are for the embedded NATS server: set PRESENCED_CLUSTER_LISTEN too")
	}
	if err := c.checkClusterSecurity(); err != nil {
		return err
	}
	if c.ClusterReplicas < 0 || c.ClusterReplicas > 5 {
		return bad("CLUSTER_REPLICAS", "must be between 1 and 5 (0: 3, or fewer when there are fewer nodes)")
	}
	if c.ClusterReplicas == 0 {
		c.ClusterReplicas = 3
		if c.ClusterListen != "" && len(c.peers)+1 < 3 {
			c.ClusterReplicas = len(c.peers) + 1
		}
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "presenced"
		}
		c.Node = h
	}
	if !names.Valid(c.Node) {
		return bad("NODE", "%q may contain only letters, digits, dash, underscore and dot", c.Node)
	}
	if c.Site != "" {
		if !c.Clustered() {
			return bad("SITE", "a site is a part of a cluster: set PRESENCED_NATS_URL or PRESENCED_CLUSTER_LISTEN too, or leave it empty")
		}
		if err := presence.ValidateSite(c.Site); err != nil {
			return &ConfigError{Var: "SITE", Err: err}
		}
	}
	if _, ctx, err := hints.ParseHintRef("x@" + c.RemoteContext); err != nil || ctx != c.RemoteContext {
		return bad("REMOTE_CONTEXT", "%q is not a context name", c.RemoteContext)
	}
	if _, ctx, err := hints.ParseHintRef("x@" + c.DialContext); err != nil || ctx != c.DialContext {
		return bad("DIAL_CONTEXT", "%q is not a context name", c.DialContext)
	}
	if _, err := calls.ParsePolicy(c.DialAllow, ""); err != nil {
		return &ConfigError{Var: "DIAL_ALLOW", Err: err}
	}
	dial, err := calls.ParsePolicy(c.DialAllow, c.DialDeny)
	if err != nil {
		return &ConfigError{Var: "DIAL_DENY", Err: err}
	}
	c.dial = dial
	switch strings.ToLower(c.DPMA) {
	case "on", "true", "1":
		c.DPMA = "on"
		if c.AMIAddr == "" || c.AMIUser == "" {
			return bad("DPMA", "Digium phone apps are answered over AMI: set PRESENCED_AMI_ADDR and PRESENCED_AMI_USER")
		}
	case "off", "false", "0", "":
		c.DPMA = "off"
	default:
		return bad("DPMA", "%q is not on or off", c.DPMA)
	}
	return nil
}

// redactor returns what removes the configured secrets (shapes only for a
// Config not made by LoadConfig).
func (c *Config) redactor() *redact.Redactor {
	if c.redact == nil {
		return redact.New()
	}
	return c.redact
}

// loadTokens reads PRESENCED_API_TOKENS and PRESENCED_API_TOKENS_FILE (at
// start, and again at SIGHUP).
func (c *Config) loadTokens() (*httpapi.Tokens, error) {
	var file io.Reader
	if c.APITokensFile != "" {
		f, err := os.Open(c.APITokensFile)
		if err != nil {
			return nil, &ConfigError{Var: "API_TOKENS_FILE", Err: err}
		}
		defer f.Close()
		file = f
	}
	tokens, err := httpapi.ParseTokens(c.APITokens, file)
	if err != nil {
		name := "API_TOKENS"
		if errors.Is(err, httpapi.ErrInTokensFile) {
			name = "API_TOKENS_FILE"
		}
		return nil, &ConfigError{Var: name, Err: err}
	}
	return tokens, nil
}

// checkListen checks a listen address: host:port with a numeric port, and
// an IP address or a name as host ("" listens on every address).
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (127.0.0.1:4573): %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	return checkHostName(addr, host)
}

// checkDial checks an address to connect to: host:port, port 1 to 65535.
func checkDial(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (127.0.0.1:5038): %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", addr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	return checkHostName(addr, host)
}

func checkHostName(addr, host string) error {
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
			}
		}
	}
	return nil
}

// checkFile checks that path is a readable regular file.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// ParseAllow parses a comma-separated list of networks ("10.0.0.0/8") and
// addresses ("192.0.2.7"). An empty list is refused: allowing everyone must
// be said explicitly with 0.0.0.0/0,::/0.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network: %w", part, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or network: %w", part, err)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no network given (use 0.0.0.0/0,::/0 to allow every client)")
	}
	return out, nil
}
