package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/presenced/presenced/calls"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/watch"
)

// phones is what desk phones' action URLs reach (httpapi.Phones): DND as
// the dnd hooks set it, call events into the change log, and the users of
// phones by MAC address (PRESENCED_PHONES).
type phones struct {
	m    *Main
	macs map[string]string // normalised MAC -> user
}

func (p phones) SetDND(ctx context.Context, user string, on bool) error {
	return dndSetter{p.m}.SetDND(ctx, user, on)
}

// PhoneEvent logs a phone's call event (an event: never in snapshots).
func (p phones) PhoneEvent(e calls.PhoneEvent) {
	e.Site = p.m.Config.Site
	p.m.hub.Publish(watch.Item{Kind: watch.KindPhone, Key: e.Key(), Phone: e})
}

func (p phones) UserOfMAC(mac string) (string, bool) {
	m, err := normalMAC(mac)
	if err != nil {
		return "", false
	}
	u, ok := p.macs[m]
	return u, ok
}

// normalMAC is a MAC address as 12 lower-case hex digits, whatever
// separators (":", "-", ".") the phone or the admin wrote.
func normalMAC(s string) (string, error) {
	s = strings.ToLower(strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.TrimSpace(s)))
	if len(s) != 12 {
		return "", fmt.Errorf("%q is not a MAC address (12 hex digits)", s)
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", fmt.Errorf("%q is not a MAC address (12 hex digits)", s)
		}
	}
	return s, nil
}

// readPhones reads PRESENCED_PHONES: "mac,user" a line, # comments.
func readPhones(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mac, user, ok := strings.Cut(line, ",")
		if !ok {
			return nil, fmt.Errorf("line %d: want mac,user", n)
		}
		m, err := normalMAC(mac)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		user = strings.TrimSpace(user)
		if err := presence.ValidateUser(user); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := out[m]; dup {
			return nil, fmt.Errorf("line %d: the phone %s is listed twice", n, m)
		}
		out[m] = user
	}
	return out, sc.Err()
}

// apiPhones is the phones for the API; PRESENCED_PHONES is read here.
func (m *Main) apiPhones() (phones, error) {
	p := phones{m: m, macs: map[string]string{}}
	if m.Config.Phones == "" {
		return p, nil
	}
	f, err := os.Open(m.Config.Phones)
	if err != nil {
		return p, fmt.Errorf("reading PRESENCED_PHONES: %w", err)
	}
	defer f.Close()
	if p.macs, err = readPhones(f); err != nil {
		return p, fmt.Errorf("reading PRESENCED_PHONES %s: %w", m.Config.Phones, err)
	}
	return p, nil
}
