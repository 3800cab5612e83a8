package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/httpapi"
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
	HTTPListen        string        `env:"HTTP_LISTEN" envDefault:"127.0.0.1:4574"`
	DataDir           string        `env:"DATA_DIR" envDefault:"./data"`
	Dialplan          string        `env:"DIALPLAN"`
	Roster            string        `env:"ROSTER"`
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

	allow    []netip.Prefix
	logLevel zerolog.Level
	tokens   *httpapi.Tokens
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
					return fmt.Errorf("%s%s: %w", envPrefix, f.Tag.Get("env"), pe.Err)
				}
			}
		}
	}
	return fmt.Errorf("reading the configuration: %w", err)
}

func (c *Config) check() error {
	allow, err := ParseAllow(c.AGIAllow)
	if err != nil {
		return fmt.Errorf("%sAGI_ALLOW: %w", envPrefix, err)
	}
	c.allow = allow
	if c.AGIMaxSessions < 1 {
		return fmt.Errorf("%sAGI_MAX_SESSIONS must be at least 1", envPrefix)
	}
	for name, d := range map[string]time.Duration{"AGI_ENV_TIMEOUT": c.AGIEnvTimeout, "AGI_COMMAND_TIMEOUT": c.AGICommandTimeout,
		"SHUTDOWN_TIMEOUT": c.ShutdownTimeout, "WEBHOOK_TIMEOUT": c.WebhookTimeout, "WEBHOOK_RETRY_MAX": c.WebhookRetryMax} {
		if d <= 0 {
			return fmt.Errorf("%s%s must be a positive duration such as 5s", envPrefix, name)
		}
	}
	if c.WebhookRetryMax < time.Second {
		return fmt.Errorf("%sWEBHOOK_RETRY_MAX must be at least 1s (retries start at 1s)", envPrefix)
	}
	if c.WebhookBacklog != 0 && c.WebhookBacklog < 100 {
		return fmt.Errorf("%sWEBHOOK_BACKLOG must be at least 100", envPrefix)
	}
	if c.LogRetention < 100 {
		return fmt.Errorf("%sLOG_RETENTION must be at least 100", envPrefix)
	}
	if c.PresenceHistory < 1 || c.PresenceHistory > 1000 {
		return fmt.Errorf("%sPRESENCE_HISTORY must be between 1 and 1000", envPrefix)
	}
	if strings.ContainsAny(c.AMIUser+c.AMISecret, "\r\n") {
		return fmt.Errorf("%sAMI_USER and %sAMI_SECRET must not contain line breaks", envPrefix, envPrefix)
	}
	if c.ARIURL != "" {
		if u, err := url.Parse(c.ARIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%sARI_URL %q is not an http(s) URL like http://127.0.0.1:8088/ari", envPrefix, c.ARIURL)
		}
	}
	if c.ARIApp == "" {
		return fmt.Errorf("%sARI_APP must not be empty", envPrefix)
	}
	for _, r := range c.ARIApp {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("%sARI_APP %q may contain only letters, digits, dash, underscore and dot", envPrefix, c.ARIApp)
		}
	}
	var file io.Reader
	if c.APITokensFile != "" {
		f, err := os.Open(c.APITokensFile)
		if err != nil {
			return fmt.Errorf("%sAPI_TOKENS_FILE: %w", envPrefix, err)
		}
		defer f.Close()
		file = f
	}
	tokens, err := httpapi.ParseTokens(c.APITokens, file)
	if err != nil {
		return fmt.Errorf("%sAPI_TOKENS(_FILE): %w", envPrefix, err)
	}
	c.tokens = tokens
	if c.DataDir == "" {
		return fmt.Errorf("%sDATA_DIR must not be empty", envPrefix)
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(c.LogLevel))
	if err != nil || c.LogLevel == "" {
		return fmt.Errorf("%sLOG_LEVEL %q is not one of trace, debug, info, warn, error", envPrefix, c.LogLevel)
	}
	c.logLevel = lvl
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fmt.Errorf("%sLOG_FORMAT %q is not json or console", envPrefix, c.LogFormat)
	}
	return nil
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
