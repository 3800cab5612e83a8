package presence

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	exp := time.Date(2026, 11, 23, 10, 0, 0, 123, time.UTC)
	for _, rec := range []Record{
		{},
		{Current: Value{State: DND, Subtype: "x,y", Message: strings.Repeat("é", 127), Expires: exp}, Pending: true},
		{Current: Value{State: Away}, History: []Value{{}, {State: Chat, Message: "a\nb"}, {State: XA, Expires: exp}}},
		{Current: Value{State: Away}, Written: map[string]Value{"paris": {State: Away}, "lyon": {State: DND, Message: "m"}, "": {}}},
	} {
		got, err := DecodeRecord(EncodeRecord(rec))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Current.Same(rec.Current) || !got.Current.Expires.Equal(rec.Current.Expires) || got.Pending != rec.Pending || len(got.History) != len(rec.History) {
			t.Fatalf("got %+v, want %+v", got, rec)
		}
		if len(got.Written) != len(rec.Written) {
			t.Fatalf("written %+v, want %+v", got.Written, rec.Written)
		}
		for site, v := range rec.Written {
			if w, ok := got.Written[site]; !ok || !w.Same(v) {
				t.Fatalf("written at %q: %+v, want %+v", site, w, v)
			}
		}
		for i := range rec.History {
			if !got.History[i].Same(rec.History[i]) || !got.History[i].Expires.Equal(rec.History[i].Expires) {
				t.Fatalf("history %d: %+v, want %+v", i, got.History[i], rec.History[i])
			}
		}
	}
}

func TestRecordRejectsGarbage(t *testing.T) {
	good := EncodeRecord(Record{Current: Value{State: Away, Message: "hi"}})
	sited := func(sites ...string) []byte { // a record with these sites, in this order
		b := []byte{1, 2, 1, 0, 0, 0, 0, byte(len(sites))}
		for _, s := range sites {
			b = append(b, byte(len(s)))
			b = append(b, s...)
			b = append(b, 0, 0, 0, 0)
		}
		return b
	}
	if _, err := DecodeRecord(sited("paris")); err != nil {
		t.Fatalf("a good record with a site: %v", err)
	}
	for _, b := range [][]byte{sited(), sited("Paris"), sited("par-is"), sited("paris", "paris"), sited("paris")[:9]} {
		if _, err := DecodeRecord(b); err == nil {
			t.Errorf("DecodeRecord(%v) accepted", b)
		}
	}
	for _, b := range [][]byte{nil, {1}, {2, 0, 1}, {1, 2, 1}, {1, 0, 0}, good[:len(good)-1], append(bytes.Clone(good), 0), {1, 0, 1, 9, 0, 0, 0}, {1, 0, 1, 1, 1, 0xff, 0, 0}} {
		if _, err := DecodeRecord(b); err == nil {
			t.Errorf("DecodeRecord(%v) accepted", b)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeRecord(Record{Current: Value{State: Away, Message: "m", Expires: time.Unix(5, 0)}, History: []Value{{}}}))
	f.Add([]byte{1, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeRecord(b)
		if err != nil {
			return
		}
		again, err := DecodeRecord(EncodeRecord(rec))
		if err != nil || !again.Current.Same(rec.Current) || len(again.History) != len(rec.History) {
			t.Fatalf("re-encoding changed %+v", rec)
		}
	})
}
