package ami

import (
	"context"
	"testing"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

func TestWriter(t *testing.T) {
	ctx := context.Background()
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Attach(astemu.New())
	r := newRecorder()
	f := r.feed(srv.Addr())
	w := Writer{Feed: f}
	if err := w.WritePresence(ctx, "CustomPresence:1001", "away,,,e"); presence.ErrorCode(err) != presence.CodeUnavailable {
		t.Fatalf("before connecting: %v", err)
	}
	start(t, f)
	r.await(t, "hints")
	testenv.Eventually(t, "AMI connected", func() bool { ok, _ := f.Status(); return ok })
	v := presence.Value{State: presence.XA, Subtype: `on "leave"`, Message: "back Monday, 9am\nreally"}
	if err := w.WritePresence(ctx, "CustomPresence:1001", presence.Encode(v)); err != nil {
		t.Fatal(err)
	}
	got, err := w.ReadPresence(ctx, "CustomPresence:1001")
	if err != nil || !got.Same(v) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	// The PresenceStateChange the write caused reaches the feed, decoded.
	r.await(t, "CustomPresence:1001=xa")
	srv.Ast.RejectPresence = true
	if err := w.WritePresence(ctx, "CustomPresence:1001", presence.Encode(v)); presence.ErrorCode(err) != presence.CodeAsteriskRejected {
		t.Fatalf("rejected write: %v", err)
	}
	if err := w.WritePresence(ctx, "PJSIP/1001", "away"); presence.ErrorCode(err) != presence.CodeInvalidUser {
		t.Fatalf("non-CustomPresence provider: %v", err)
	}
}
