package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/storage/store"
)

var ctx = context.Background()

func TestRoundTripAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	rec := presence.Record{
		Current: presence.Value{State: presence.Away, Subtype: "lunch", Message: "back, \"soon\"", Expires: exp},
		History: []presence.Value{{}, {State: presence.Available}},
		Pending: true,
	}
	if err := db.SaveRecord(ctx, "1001", rec); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, found, err := db.LoadRecord(ctx, "1001")
	if err != nil || !found || !got.Current.Same(rec.Current) || !got.Current.Expires.Equal(exp) || len(got.History) != 2 || !got.Pending || got.History[1].State != presence.Available {
		t.Fatalf("got %+v, %v, %v", got, found, err)
	}
	if _, found, _ := db.LoadRecord(ctx, "nobody"); found {
		t.Fatal("found a record never saved")
	}
	all, err := db.Records(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Records = %v, %v", all, err)
	}
}

func TestLockedFile(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = store.Open(dir)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, store.FileName), []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(dir)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open of a corrupt file: %v", err)
	}
}

func TestOtherSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	b, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucketIfNotExists([]byte("meta"))
		return m.Put([]byte("schema"), []byte("2"))
	})
	_ = b.Close()
	_, err = store.Open(dir)
	if err == nil || !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("Open of a schema 2 file: %v", err)
	}
}

func TestUnwritableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(file, nil, 0o600)
	if _, err := store.Open(filepath.Join(file, "sub")); err == nil {
		t.Fatal("Open under a file succeeded")
	}
}

// Concurrent saves share commits and all reach the disk.
func TestConcurrentSavesAreDurable(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 200)
	for i := range 200 {
		go func() {
			errs <- db.SaveRecord(ctx, "u"+strconv.Itoa(i), presence.Record{Current: presence.Value{State: presence.Away, Message: strconv.Itoa(i)}})
		}()
	}
	for range 200 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	if err := db.SaveRecord(ctx, "late", presence.Record{}); err == nil {
		t.Fatal("save after Close succeeded")
	}
	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, _ := db.Records(ctx)
	if len(all) != 200 || all["u7"].Current.Message != "7" {
		t.Fatalf("%d records after reopen", len(all))
	}
}

// An empty presenced.db (a full disk, a bad copy) is not taken for a new
// store: presenced would forget every user without a word.
func TestEmptyFileIsNotAStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, store.FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(dir)
	if err == nil || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), store.FileName) {
		t.Fatalf("got %v", err)
	}
}
