package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// Where webhooks may go. A webhook target is chosen by whoever holds an
// admin token (or, in open mode, whoever reaches the loopback API), and
// presenced then makes requests to it: the classic server-side request
// forgery. So every connection is checked after the name is resolved, in
// the dialer (a name that resolves to a refused address, or is rebound to
// one later, gets nowhere), and a URL is checked at creation too, its name
// resolved then.
//
// Always refused: unspecified (0.0.0.0, ::), link-local (169.254.0.0/16,
// fe80::/10, where cloud metadata services live), multicast, broadcast,
// 0.0.0.0/8 and the metadata addresses that are not link-local
// (fd00:ec2::254, 100.100.100.200, 168.63.129.16), also when embedded in
// IPv4-mapped or NAT64 addresses. Loopback and private networks (10/8,
// 172.16/12, 192.168/16, 100.64/10, fc00::/7) are allowed by default,
// PRESENCED_WEBHOOK_ALLOW=loopback,private: presenced runs on premises,
// next to the CRM it feeds, often on the same host. On a cloud host, or
// where the admin API is shared, set it to "none".
//
// Requests go straight to the target: a proxy from the environment
// (HTTP_PROXY) would be the address checked instead of the target's, so
// none is used.

// CodeTargetRefused is the code of a target presenced does not send to.
const CodeTargetRefused = presence.CodeTargetRefused

// TargetPolicy says which address classes beyond the public internet a
// webhook may reach.
type TargetPolicy struct {
	Loopback bool // 127.0.0.0/8, ::1
	Private  bool // 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7
}

// DefaultTargetPolicy allows loopback and private networks (PRESENCED_WEBHOOK_ALLOW's default).
func DefaultTargetPolicy() TargetPolicy { return TargetPolicy{Loopback: true, Private: true} }

// ParseTargetPolicy reads PRESENCED_WEBHOOK_ALLOW: "none", or a comma list
// of loopback and private.
func ParseTargetPolicy(s string) (TargetPolicy, error) {
	var p TargetPolicy
	if strings.TrimSpace(strings.ToLower(s)) == "none" {
		return p, nil
	}
	for _, c := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(c)) {
		case "loopback":
			p.Loopback = true
		case "private":
			p.Private = true
		case "":
		default:
			return p, fmt.Errorf("%q is not loopback, private or none", clip.Clip(strings.TrimSpace(c)))
		}
	}
	return p, nil
}

var (
	metadata = []netip.Addr{netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200"), netip.MustParseAddr("168.63.129.16")}
	cgnat    = netip.MustParsePrefix("100.64.0.0/10")
	thisNet  = netip.MustParsePrefix("0.0.0.0/8")
	nat64    = netip.MustParsePrefix("64:ff9b::/96")
	// nat64Local is the local-use NAT64 prefix (RFC 8215): the IPv4
	// address is in the last 32 bits, as in the well-known one.
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	// sixToFour (RFC 3056) carries an IPv4 address in bits 16-47.
	sixToFour = netip.MustParsePrefix("2002::/16")
	// v4Compat, "::a.b.c.d" (deprecated by RFC 4291, still routed by
	// some stacks to the IPv4 address).
	v4Compat = netip.MustParsePrefix("::/96")
	// teredo (RFC 4380) carries the client's IPv4 address, inverted, in
	// the last 32 bits.
	teredo = netip.MustParsePrefix("2001::/32")
	// ietfProto is 192.0.0.0/24 (RFC 6890: protocol assignments, not
	// for hosts); 192.0.0.192 answers as a cloud metadata service.
	ietfProto = netip.MustParsePrefix("192.0.0.0/24")
	bcast     = netip.MustParseAddr("255.255.255.255")
)

// embeddedV4 returns the IPv4 address an IPv6 address carries by one of
// the translation schemes, and which.
func embeddedV4(a netip.Addr) (netip.Addr, string, bool) {
	if !a.Is6() {
		return netip.Addr{}, "", false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a), nat64Local.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:])), "a NAT64 address", true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "a 6to4 address", true
	case teredo.Contains(a):
		v := [4]byte(b[12:])
		for i := range v {
			v[i] ^= 0xff
		}
		return netip.AddrFrom4(v), "a Teredo address", true
	case v4Compat.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:])), "an IPv4-compatible address", true
	}
	return netip.Addr{}, "", false
}

// TargetError is an address a webhook may not reach.
type TargetError struct {
	Addr  netip.Addr
	Class string
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("%s: %s is %s, where webhooks are not sent", CodeTargetRefused, e.Addr, e.Class)
}

// Check returns a *TargetError when a may not be reached.
func (p TargetPolicy) Check(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	if v4, scheme, ok := embeddedV4(a); ok {
		if err := p.Check(v4); err != nil {
			return &TargetError{Addr: a, Class: scheme + " of " + err.(*TargetError).Class}
		}
	}
	class := ""
	switch {
	case a.IsUnspecified() || (a.Is4() && thisNet.Contains(a)):
		class = "unspecified"
	case a.IsLinkLocalUnicast():
		class = "link-local (cloud metadata lives there)"
	case a.IsMulticast() || a == bcast:
		class = "multicast or broadcast"
	case ietfProto.Contains(a):
		class = "a protocol assignment (192.0.0.0/24; 192.0.0.192 is a cloud metadata address)"
	case isMetadata(a):
		class = "a cloud metadata address"
	case a.IsLoopback() && !p.Loopback:
		class = "loopback (PRESENCED_WEBHOOK_ALLOW)"
	case (a.IsPrivate() || cgnat.Contains(a)) && !p.Private:
		class = "a private network (PRESENCED_WEBHOOK_ALLOW)"
	}
	if class != "" {
		return &TargetError{Addr: a, Class: class}
	}
	return nil
}

func isMetadata(a netip.Addr) bool {
	for _, m := range metadata {
		if a == m {
			return true
		}
	}
	return false
}

// checkHost checks a URL's host and port at creation: an address is
// checked as it is; a name must not look like a number (browsers and
// resolvers read "2130706433", "0x7f000001", "0177.1" as IPv4 addresses,
// which would dodge the check), and is resolved and each address checked.
func (p TargetPolicy) checkHost(ctx context.Context, resolve func(context.Context, string) ([]netip.Addr, error), rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return presence.Errorf(presence.CodeInvalidArgument, "webhook url does not parse")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return presence.Errorf(presence.CodeInvalidArgument, "webhook url: the port must be 1 to 65535")
		}
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.Check(a); err != nil {
			return presence.Errorf(CodeTargetRefused, "webhook url: %s", strings.TrimPrefix(err.Error(), string(CodeTargetRefused)+": "))
		}
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if last := labels[len(labels)-1]; numeric(last) {
		return presence.Errorf(CodeTargetRefused, "webhook url: %q reads as an IP address; write an address as 192.0.2.10 or [2001:db8::1]", clip.Clip(host))
	}
	if resolve == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := resolve(rctx, host)
	if err != nil {
		// A name that does not resolve yet may later; the dialer checks
		// every connection anyway.
		return nil
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			return presence.Errorf(CodeTargetRefused, "webhook url: %s resolves to %s", clip.Clip(host), strings.TrimPrefix(err.Error(), string(CodeTargetRefused)+": "))
		}
	}
	return nil
}

// numeric: a label that URL parsers take for a number (decimal, 0x hex,
// octal), which makes the host an IPv4 address.
func numeric(label string) bool {
	if label == "" {
		return false
	}
	l := strings.ToLower(label)
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		l = rest
		for _, c := range l {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	for _, c := range l {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// control is the dialer's check of every connection, after resolution.
func (p TargetPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &TargetError{Class: "not an address (" + clip.Clip(address) + ")"}
	}
	return p.Check(ap.Addr())
}

// client returns the HTTP client of webhooks: every connection checked,
// no proxy, redirects not followed (a redirect could lead anywhere).
func (p TargetPolicy) client() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: nil, ForceAttemptHTTP2: true, MaxIdleConns: 100,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// targetRefused reports whether err is a refused connection.
func targetRefused(err error) bool {
	var te *TargetError
	return errors.As(err, &te)
}
