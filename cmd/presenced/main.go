// Command presenced is a presence and hint service for Asterisk. See the
// README for what it does and how to configure it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

const usage = `usage: presenced [serve|version|config|dialplan|presence|hints|webhooks|xuc-passwd|help]

  serve      run the service (the default); configured by PRESENCED_* variables
  version    print the version
  config     check the configuration without starting (presenced config check)
  dialplan   write hints for extensions.conf, or check one (presenced dialplan help)
  presence   get, set, restore or list presence through the HTTP API (presenced presence help)
  hints      list the hints and their states
  webhooks   list, add or delete webhooks
  xuc-passwd read a password on standard input, print its bcrypt hash for PRESENCED_XUC_USERS
`

func run(args []string, environ []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		if len(args) > 1 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return serve(environ, stderr)
	case "version":
		fmt.Fprintln(stdout, "presenced", buildVersion())
		return 0
	case "config":
		return configCheck(args[1:], environ, stdout, stderr)
	case "dialplan":
		return dialplanCmd(args[1:], stdout, stderr)
	case "presence", "hints", "webhooks":
		return adminCmd(cmd, args[1:], environ, stdout, stderr)
	case "xuc-passwd":
		return xucPasswd(os.Stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "presenced: unknown command %q\n%s", cmd, usage)
	return 2
}

func serve(environ []string, stderr io.Writer) int {
	cfg, err := LoadConfig(environ)
	if err != nil {
		fmt.Fprintln(stderr, "presenced:", err)
		return 2
	}
	log := NewLogger(cfg, stderr)
	if cfg.Demo {
		log = log.With().Bool("demo", true).Logger()
		log.Warn().Msg("DEMO: presenced runs against an emulated Asterisk (make demo); the users, phones and calls are made up")
	}
	next := cfg.setup()
	if next == nil {
		next = cfg.missing()
	}
	for _, s := range next {
		log.Warn().Msg(s)
	}
	for _, u := range unknownVars(environ) {
		log.Warn().Str("variable", u[0]).Str("closest", u[1]).Msg(unknownLine(u))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// SIGHUP re-reads PRESENCED_DIALPLAN, as `dialplan reload` re-reads
	// extensions.conf in Asterisk.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	m := NewMain(cfg, log)
	m.Reload = hup
	if err := m.Run(ctx); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, "presenced:", cfg.redactor().String(err.Error()))
			return 2
		}
		if errors.Is(err, errStart) {
			return 1
		}
		log.Error().Err(err).Msg("presenced stopped with an error")
		return 1
	}
	log.Info().Msg("presenced stopped")
	return 0
}

// NewLogger returns the process logger: JSON lines by default, or zerolog's
// console format for people at a terminal (in colour only there: colour
// codes in a file or the journal are noise). Every line goes through the
// redactor, whatever its level: no secret reaches the log.
func NewLogger(cfg Config, w io.Writer) zerolog.Logger {
	w = cfg.redactor().Writer(w)
	if cfg.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(cfg.logLevel).With().Timestamp().Logger()
}

// isTerminal reports whether w (below the redactor) is a terminal.
func isTerminal(w io.Writer) bool {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap()
	}
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
