package store

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
)

func TestRecordRoundTrip(t *testing.T) {
	exp := time.Date(2026, 11, 23, 10, 0, 0, 123, time.UTC)
	for _, rec := range []presence.Record{
		{},
		{Current: presence.Value{State: presence.DND, Subtype: "x,y", Message: strings.Repeat("é", 127), Expires: exp}, Pending: true},
		{Current: presence.Value{State: presence.Away}, History: []presence.Value{{}, {State: presence.Chat, Message: "a\nb"}, {State: presence.XA, Expires: exp}}},
	} {
		got, err := decodeRecord(encodeRecord(rec))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Current.Same(rec.Current) || !got.Current.Expires.Equal(rec.Current.Expires) || got.Pending != rec.Pending || len(got.History) != len(rec.History) {
			t.Fatalf("got %+v, want %+v", got, rec)
		}
		for i := range rec.History {
			if !got.History[i].Same(rec.History[i]) || !got.History[i].Expires.Equal(rec.History[i].Expires) {
				t.Fatalf("history %d: %+v, want %+v", i, got.History[i], rec.History[i])
			}
		}
	}
}

func TestRecordRejectsGarbage(t *testing.T) {
	good := encodeRecord(presence.Record{Current: presence.Value{State: presence.Away, Message: "hi"}})
	for _, b := range [][]byte{nil, {1}, {2, 0, 1}, {1, 2, 1}, {1, 0, 0}, good[:len(good)-1], append(bytes.Clone(good), 0), {1, 0, 1, 9, 0, 0, 0}, {1, 0, 1, 1, 1, 0xff, 0, 0}} {
		if _, err := decodeRecord(b); err == nil {
			t.Errorf("decodeRecord(%v) accepted", b)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(presence.Record{Current: presence.Value{State: presence.Away, Message: "m", Expires: time.Unix(5, 0)}, History: []presence.Value{{}}}))
	f.Add([]byte{1, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(rec))
		if err != nil || !again.Current.Same(rec.Current) || len(again.History) != len(rec.History) {
			t.Fatalf("re-encoding changed %+v", rec)
		}
	})
}
