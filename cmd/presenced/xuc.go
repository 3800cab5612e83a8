package main

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/presenced/presenced/views/appws"
	"github.com/presenced/presenced/views/httpapi"
	"github.com/presenced/presenced/views/xuc"
)

// xucMounts serves the xuc Phone API when PRESENCED_XUC_USERS names its
// users file.
func (m *Main) xucMounts() ([]httpapi.Mount, error) {
	if m.Config.XucUsers == "" {
		return nil, nil
	}
	f, err := os.Open(m.Config.XucUsers)
	if err != nil {
		return nil, fmt.Errorf("reading PRESENCED_XUC_USERS: %w", err)
	}
	defer f.Close()
	users, err := xuc.ParseUsers(f)
	if err != nil {
		return nil, fmt.Errorf("reading PRESENCED_XUC_USERS %s: %w", m.Config.XucUsers, err)
	}
	cfg := xuc.Config{Users: users, Hub: m.hub, Presence: m.svc, Forwards: m.fwd,
		Site: m.Config.Site, Origins: m.originHosts(), Log: m.Log.With().Str("component", "xuc").Logger()}
	if m.dialer != nil { // with AMI
		cfg.Calls = m.dialer
	}
	srv := xuc.New(cfg)
	m.Log.Info().Str("component", "xuc").Str("file", m.Config.XucUsers).Int("users", len(users)).Msg("xuc Phone API users read")
	return []httpapi.Mount{{Pattern: "/xuc/", Handler: srv.Handler()}}, nil
}

// xucPasswd reads a password (its first line) and prints its bcrypt hash,
// for a line of the users file: login:hash:extension.
func xucPasswd(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "presenced: reading the password:", err)
		return 1
	}
	h, err := xuc.HashPassword(strings.TrimRight(line, "\r\n"))
	if err != nil {
		fmt.Fprintln(stderr, "presenced:", err)
		return 2
	}
	fmt.Fprintln(stdout, h)
	return 0
}

// appwsMounts serves Innovaphone-style app logins when PRESENCED_APPWS_APPS
// names the apps' passwords file.
func (m *Main) appwsMounts() ([]httpapi.Mount, error) {
	if m.Config.AppwsApps == "" {
		return nil, nil
	}
	f, err := os.Open(m.Config.AppwsApps)
	if err != nil {
		return nil, fmt.Errorf("reading PRESENCED_APPWS_APPS: %w", err)
	}
	defer f.Close()
	apps, err := appws.ParseApps(f)
	if err != nil {
		return nil, fmt.Errorf("reading PRESENCED_APPWS_APPS %s: %w", m.Config.AppwsApps, err)
	}
	srv := appws.New(appws.Config{Apps: apps, Hub: m.hub, Presence: m.svc.Client(), Origins: m.originHosts(),
		Log: m.Log.With().Str("component", "appws").Logger()})
	m.Log.Info().Str("component", "appws").Str("file", m.Config.AppwsApps).Int("apps", len(apps)).Msg("app passwords read")
	return []httpapi.Mount{{Pattern: appws.Path, Handler: srv.Handler()}}, nil
}

// originHosts are the hosts of PRESENCED_HTTP_ALLOWED_ORIGINS, for the
// facades' WebSockets.
func (m *Main) originHosts() []string {
	var hosts []string
	for _, o := range m.Config.origins {
		if u, err := url.Parse(o); err == nil {
			hosts = append(hosts, u.Host)
		}
	}
	return hosts
}
