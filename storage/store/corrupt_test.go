//go:build !race

package store_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/storage/store"
)

// This test is built without the race detector only: its pointer checks
// (checkptr) stop the process on bbolt's unsafe conversions of corrupt
// pages before any panic could be recovered, which a normal build does
// not do. make test runs it in a build of its own.

// Flipped bytes in any page of a store give a clear error, at Open or at
// the first read that meets them, never a panic; what opens cleanly reads.
func TestFlippedBytesInEveryPage(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		rec := presence.Record{Current: presence.Value{State: presence.Away, Message: strings.Repeat("m", i%50)}, History: []presence.Value{{State: presence.DND}}}
		if err := db.SaveRecord(ctx, "u"+strconv.Itoa(i), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AppendLog(ctx, []change.Entry{{Seq: 1, Key: "k", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	opened, refused := 0, 0
	for p := 0; p*page < len(good); p++ {
		for _, off := range []int{0, 8, 16, 20, 40, 100, 2000} {
			bad := append([]byte(nil), good...)
			at := p*page + off
			for i := at; i < at+4 && i < len(bad); i++ {
				bad[i] ^= 0xA5
			}
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, store.FileName), bad, 0o600); err != nil {
				t.Fatal(err)
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("page %d offset %d: panic %v", p, off, r)
					}
				}()
				db, err := store.Open(d)
				if err != nil {
					refused++
					if !strings.Contains(err.Error(), store.FileName) {
						t.Fatalf("page %d offset %d: unclear error %v", p, off, err)
					}
					return
				}
				opened++
				defer db.Close()
				_, _ = db.Records(ctx)
				_, _, _ = db.Webhooks(ctx)
				_, _, _, _ = db.LogState(ctx)
				_ = db.SaveRecord(ctx, "after", presence.Record{})
			}()
		}
	}
	t.Logf("%d pages: %d corrupted copies refused, %d opened", len(good)/page, refused, opened)
	if refused == 0 {
		t.Fatal("no corruption was noticed at all")
	}
}
