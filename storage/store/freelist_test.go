package store_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/storage/store"
)

// A free page list naming a page beyond the file's end (bbolt would grow
// the file to it at the next write: a gigabyte for this one) is refused at
// Open, with the file untouched; the same store with its list intact
// opens.
func TestCorruptFreelistRefusedAtOpen(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Writes and rewrites leave free pages.
	for round := range 3 {
		for i := range 50 {
			rec := presence.Record{Current: presence.Value{State: presence.Away, Message: strings.Repeat("m", 20*round+i)}}
			if err := db.SaveRecord(ctx, "u"+strconv.Itoa(i), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, store.FileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt's layout: a page header of 16 bytes (id, flags, count,
	// overflow); a meta page holds magic, version, page size, flags, the
	// root bucket (16 bytes), the free list's page id at 48, the high
	// water mark at 56 and the transaction id at 64. The newer meta page
	// is the one in use.
	pageSize := int(binary.LittleEndian.Uint32(raw[16+8:]))
	meta := 0
	if binary.LittleEndian.Uint64(raw[pageSize+64:]) > binary.LittleEndian.Uint64(raw[64:]) {
		meta = pageSize
	}
	freelist := int(binary.LittleEndian.Uint64(raw[meta+48:]))
	at := freelist * pageSize
	bad := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint16(bad[at+10:], 1)                        // one free page...
	binary.LittleEndian.PutUint64(bad[at+16:], (1<<30)/uint64(pageSize)) // ...at 1 GiB
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := store.Open(dir); err == nil {
		db.Close()
		t.Fatal("a store whose free page list points beyond the file opened")
	} else if !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "free page list") {
		t.Fatalf("error: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != int64(len(raw)) {
		t.Fatalf("the refused file changed size: %d, was %d", fi.Size(), len(raw))
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir)
	if err != nil {
		t.Fatalf("the intact store: %v", err)
	}
	db.Close()
}
