package calls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/linefile"
)

// DND is how a desk phone's DND key sets the user's DND: as the dnd hooks
// do (presence.Service.SetDND).
type DND interface {
	SetDND(ctx context.Context, user string, on bool) error
}

// Phones is what desk phones' action URLs reach: their DND key, their call
// events (into the change log, KindPhone), and the users of phones named
// by MAC address (PRESENCED_PHONES).
type Phones struct {
	dnd  DND
	sink change.Sink
	site string
	macs map[string]string // normalised MAC -> user
}

// NewPhones returns the phones of site (PRESENCED_SITE), with the users of
// macs (ReadPhones; nil: none), their events going to sink.
func NewPhones(dnd DND, sink change.Sink, site string, macs map[string]string) *Phones {
	if macs == nil {
		macs = map[string]string{}
	}
	return &Phones{dnd: dnd, sink: sink, site: site, macs: macs}
}

// SetDND sets the user's DND as the dnd hooks do.
func (p *Phones) SetDND(ctx context.Context, user string, on bool) error {
	return p.dnd.SetDND(ctx, user, on)
}

// PhoneEvent logs a phone's call event (an event: never in snapshots).
func (p *Phones) PhoneEvent(e PhoneEvent) {
	e.Site = p.site
	p.sink.Append(e.Change())
}

// UserOfMAC returns the user of a phone.
func (p *Phones) UserOfMAC(mac string) (string, bool) {
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

// ReadPhones reads the phones file (PRESENCED_PHONES): "mac,user" a line,
// # comments.
func ReadPhones(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	err := linefile.Read(r, "the phone", func(line string) (string, error) {
		mac, user, ok := strings.Cut(line, ",")
		if !ok {
			return "", errors.New("want mac,user")
		}
		m, err := normalMAC(mac)
		if err != nil {
			return "", err
		}
		user = strings.TrimSpace(user)
		if err := presence.ValidateUser(user); err != nil {
			return "", err
		}
		out[m] = user
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
