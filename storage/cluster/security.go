package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Security is how the nodes of a cluster know each other and keep what
// they say to themselves. Everything the cluster holds (webhook secrets
// and bearers, forwards the dialplan dials, presence records) is worth
// stealing or planting, so a cluster that anything beyond loopback can
// reach has both:
//
//   - a shared secret (Secret): the embedded servers' routes and client
//     ports take only connections that present it (user
//     "presenced-route" between servers, "presenced" for clients); or,
//     for an existing NATS, the credentials it wants (a creds file, an
//     nkey seed, user and password in the URL, or the secret as the
//     password of user "presenced");
//   - TLS with a CA of the cluster's own (CAFile): routes are mutual TLS
//     (each server's certificate, for the name or address its peers dial,
//     checked against the CA both ways); the client port is TLS too;
//     clients check the server's certificate against the CA.
type Security struct {
	Secret                    string
	CertFile, KeyFile, CAFile string
	// CredsFile (a NATS .creds file) or NkeyFile (an nkey seed) log in to
	// an existing NATS.
	CredsFile, NkeyFile string
}

// The users of the embedded servers.
const (
	routeUser  = "presenced-route"
	clientUser = "presenced"
)

// MinSecret is the shortest shared secret taken.
const MinSecret = 32

// ReadSecret reads a shared secret file: one line, at least MinSecret
// characters, no spaces.
func ReadSecret(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the cluster's secret: %w", err)
	}
	s := strings.TrimSpace(string(raw))
	if len(s) < MinSecret || strings.ContainsAny(s, " \t\r\n:@/") {
		return "", fmt.Errorf("the cluster's secret in %s must be one line of at least %d characters without spaces, ':', '@' or '/' (openssl rand -hex 32)", path, MinSecret)
	}
	return s, nil
}

// HasTLS reports whether TLS is configured.
func (s Security) HasTLS() bool { return s.CertFile != "" || s.CAFile != "" }

// Check checks the files (read now, as at start) for an embedded server:
// the certificate, its key and the CA together.
func (s Security) Check() error {
	if s.CertFile == "" && s.KeyFile == "" && s.CAFile == "" {
		return nil
	}
	if s.CertFile == "" || s.KeyFile == "" || s.CAFile == "" {
		return errors.New("TLS needs a certificate, its key and the cluster's CA (all three)")
	}
	_, err := s.serverTLS(false)
	return err
}

func (s Security) caPool() (*x509.CertPool, error) {
	raw, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("the cluster's CA %s holds no PEM certificate", s.CAFile)
	}
	return pool, nil
}

// serverTLS is the TLS of an embedded server's port: routes (mutual)
// or the client port (the server's certificate only; clients log in with
// the secret).
func (s Security) serverTLS(mutual bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the node's certificate and key: %w", err)
	}
	pool, err := s.caPool()
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if mutual {
		c.RootCAs, c.ClientCAs, c.ClientAuth = pool, pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// routeURL is a peer's route address with the routes' credentials.
func (s Security) routeURL(peer string) *url.URL {
	u := &url.URL{Scheme: "nats", Host: peer}
	if s.Secret != "" {
		u.User = url.UserPassword(routeUser, s.Secret)
	}
	return u
}

// ClientOptions are the options of a connection to an existing NATS
// (PRESENCED_NATS_URL): its credentials and TLS.
func (s Security) ClientOptions() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case s.CredsFile != "":
		if _, err := os.Stat(s.CredsFile); err != nil {
			return nil, fmt.Errorf("the NATS creds file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(s.CredsFile))
	case s.NkeyFile != "":
		o, err := nats.NkeyOptionFromSeed(s.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("the NATS nkey seed: %w", err)
		}
		opts = append(opts, o)
	case s.Secret != "":
		opts = append(opts, nats.UserInfo(clientUser, s.Secret))
	}
	if s.CAFile != "" {
		opts = append(opts, nats.RootCAs(s.CAFile))
	}
	if s.CertFile != "" {
		opts = append(opts, nats.ClientCert(s.CertFile, s.KeyFile))
	}
	return opts, nil
}

// Loopback reports whether a listen or dial host is loopback only
// ("127.0.0.1", "::1", "localhost"); "", "0.0.0.0" and "::" are every
// address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
