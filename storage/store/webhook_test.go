package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/presenced/presenced/changelog/change"
)

func entries(from uint64, keys ...string) []change.Entry {
	var out []change.Entry
	for i, k := range keys {
		out = append(out, change.Entry{Seq: from + uint64(i), Key: k, Value: []byte(fmt.Sprintf("v%d", from+uint64(i)))})
	}
	return out
}

func TestLogAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AppendLog(ctx, entries(1, "a", "b", "a")); err != nil {
		t.Fatal(err)
	}
	// A gap or a repeat is refused, and changes nothing.
	if err := d.AppendLog(ctx, entries(5, "c")); err == nil {
		t.Fatal("gap accepted")
	}
	if err := d.AppendLog(ctx, entries(3, "c")); err == nil {
		t.Fatal("repeat accepted")
	}
	if err := d.PutWebhook(ctx, "w1", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.SetWebhookCursors(ctx, map[string]uint64{"w1": 2, "gone": 7}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	head, floor, latest, err := d.LogState(ctx)
	if err != nil || head != 3 || floor != 0 {
		t.Fatalf("head %d floor %d %v", head, floor, err)
	}
	want := []change.Entry{{Seq: 3, Key: "a", Value: []byte("v3")}, {Seq: 2, Key: "b", Value: []byte("v2")}}
	if !reflect.DeepEqual(latest, want) {
		t.Fatalf("latest %+v", latest)
	}
	got, err := d.ReadLog(ctx, 1, 10)
	if err != nil || !reflect.DeepEqual(got, entries(2, "b", "a")) {
		t.Fatalf("read %+v %v", got, err)
	}
	configs, cursors, err := d.Webhooks(ctx)
	if err != nil || string(configs["w1"]) != `{"x":1}` || !reflect.DeepEqual(cursors, map[string]uint64{"w1": 2}) {
		t.Fatalf("webhooks %v %v %v", configs, cursors, err)
	}

	if err := d.TrimLog(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := d.TrimLog(ctx, 9); err == nil {
		t.Fatal("trim past the head accepted")
	}
	got, _ = d.ReadLog(ctx, 0, 10)
	if head, floor, _, _ := d.LogState(ctx); !reflect.DeepEqual(got, entries(3, "a")) || floor != 2 || head != 3 {
		t.Fatalf("after trim %+v floor %d", got, floor)
	}
	if err := d.DeleteWebhook(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if configs, cursors, _ := d.Webhooks(ctx); len(configs)+len(cursors) != 0 {
		t.Fatalf("after delete %v %v", configs, cursors)
	}
}

// Each key's latest entry is the journal's, or, once trimmed, the one
// folded into journal_latest; across a reopen too.
func TestLatestThroughTrims(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AppendLog(ctx, entries(1, "a", "b", "a", "c")); err != nil {
		t.Fatal(err)
	}
	if err := d.TrimLog(ctx, 3); err != nil {
		t.Fatal(err)
	}
	check := func(d *DB) {
		t.Helper()
		head, floor, latest, err := d.LogState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, e := range latest {
			got[e.Key] = e.Seq
		}
		if head != 4 || floor != 3 || !reflect.DeepEqual(got, map[string]uint64{"a": 3, "b": 2, "c": 4}) {
			t.Fatalf("head %d floor %d latest %v", head, floor, got)
		}
	}
	check(d)
	d.Close()
	if d, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	check(d)
}
