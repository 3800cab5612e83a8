package store

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/presenced/presenced/core/presence"
)

// benchRecord is a user's record with a full restore memory (20 levels),
// the size a busy user's record reaches.
func benchRecord() presence.Record {
	rec := presence.Record{Current: presence.Value{State: presence.Away, Message: "Lunch, back at 2"}}
	for i := range presence.DefaultMaxHistory {
		rec.History = append(rec.History, presence.Value{State: presence.States()[i%7], Message: strings.Repeat("m", 30)})
	}
	return rec
}

// BenchmarkSaveParallel compares the group-committed SaveRecord with the
// baseline of one bbolt Update (and its two fdatasyncs) per save, 32
// savers at a time (SetParallelism 16 x GOMAXPROCS 2), as concurrent hooks.
func BenchmarkSaveParallel(b *testing.B) {
	for _, mode := range []string{"group-commit", "update-per-save"} {
		b.Run(mode, func(b *testing.B) {
			db, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			rec := benchRecord()
			var n atomic.Int32
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				user := "u" + strconv.Itoa(int(n.Add(1)))
				for pb.Next() {
					var err error
					if mode == "group-commit" {
						err = db.SaveRecord(context.Background(), user, rec)
					} else {
						raw := presence.EncodeRecord(rec)
						err = db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUsers).Put([]byte(user), raw) })
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
