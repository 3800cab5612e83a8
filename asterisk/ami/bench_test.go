package ami

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
)

// bigAsterisk is a fake AMI with 5,000 presence providers and 5,000 hints.
func bigAsterisk(b *testing.B) *amitest.Server {
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		b.Fatal(err)
	}
	var hs []amitest.Hint
	for i := range 5000 {
		n := fmt.Sprint(10000 + i)
		srv.SetPresenceQuietly("CustomPresence:"+n, amitest.Presence{State: "away", Subtype: "lunch", Message: "back at " + n})
		hs = append(hs, amitest.Hint{Exten: n, Context: "from-internal", App: "PJSIP/" + n + "&Stasis:presenced-dnd-" + n + ",CustomPresence:" + n, Status: 0, StatusText: "Idle"})
	}
	srv.SetHints(hs...)
	return srv
}

// BenchmarkResync: log in and read 5,000 presences and 5,000 hints, into a
// hint table (the whole AMI side of a resync).
func BenchmarkResync(b *testing.B) {
	srv := bigAsterisk(b)
	defer srv.Close()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		tb := hints.NewTable()
		f := &Feed{Log: zerolog.Nop(), Presence: tablePresence{tb}, Hints: tb}
		c, err := dial(ctx, srv.Addr(), "ami", "ami", 10*time.Second, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.resync(ctx, c, 30*time.Second); err != nil {
			b.Fatal(err)
		}
		c.close()
		if len(tb.Snapshot()) != 5000 {
			b.Fatal("hints missing")
		}
	}
}

// BenchmarkResyncBaseline: the same login and lists, the frames only read
// off the socket and split: the floor of a resync.
func BenchmarkResyncBaseline(b *testing.B) {
	srv := bigAsterisk(b)
	defer srv.Close()
	b.ResetTimer()
	for range b.N {
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReader(conn)
		_, _ = br.ReadString('\n')
		_, _ = conn.Write([]byte("Action: Login\r\nUsername: ami\r\nSecret: ami\r\n\r\nAction: PresenceStateList\r\nActionID: 1\r\n\r\nAction: ExtensionStateList\r\nActionID: 2\r\n\r\n"))
		completes := 0
		for completes < 2 {
			f, err := readFrame(br)
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(f, "EventList: Complete") {
				completes++
			}
		}
		conn.Close()
	}
}

// tablePresence feeds presence straight to a table, as the benchmark's
// stand-in for the presence service.
type tablePresence struct{ t *hints.Table }

func (p tablePresence) Observe(provider string, v presence.Value, invalid bool) {
	p.t.SetPresence(provider, hints.ProviderPresence{Value: v, Invalid: invalid})
}

func (p tablePresence) ForgetEchoes() {}
