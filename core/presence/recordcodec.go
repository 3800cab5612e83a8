package presence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// A record is stored (bbolt, and a cluster's key-value bucket) in a
// compact binary form rather than JSON: it is written on every hook, and encoding/json's reflection was a tenth of a
// hook's CPU (see BENCHMARKS.md).
//
//	byte     format (1)
//	byte     flags (bit 0: pending; bit 1: sites follow)
//	uvarint  number of values n (>= 1): the current value, then the history, oldest first
//	n times: byte state, uvarint len + subtype, uvarint len + message, varint expiry (Unix ns, 0 = none)
//	with bit 1 (a cluster's Written): uvarint number of sites m (>= 1), then m times, by name:
//	         uvarint len + site, a value as above
const recordFormat = 1

// maxValues bounds the values of one record when decoding; maxSites its
// sites.
const (
	maxValues = 1 + 1000
	maxSites  = 1000
)

// EncodeRecord returns a record's stored form.
func EncodeRecord(rec Record) []byte {
	size := 3
	for _, v := range append([]Value{rec.Current}, rec.History...) {
		size += 1 + 2*binary.MaxVarintLen16 + len(v.Subtype) + len(v.Message) + binary.MaxVarintLen64
	}
	b := make([]byte, 0, size)
	flags := byte(0)
	if rec.Pending {
		flags |= 1
	}
	if len(rec.Written) > 0 {
		flags |= 2
	}
	b = append(b, recordFormat, flags)
	b = binary.AppendUvarint(b, uint64(1+len(rec.History)))
	b = appendValue(b, rec.Current)
	for _, v := range rec.History {
		b = appendValue(b, v)
	}
	if len(rec.Written) > 0 {
		b = binary.AppendUvarint(b, uint64(len(rec.Written)))
		for _, site := range slices.Sorted(maps.Keys(rec.Written)) {
			b = binary.AppendUvarint(b, uint64(len(site)))
			b = append(b, site...)
			b = appendValue(b, rec.Written[site])
		}
	}
	return b
}

func appendValue(b []byte, v Value) []byte {
	b = append(b, byte(v.State))
	b = binary.AppendUvarint(b, uint64(len(v.Subtype)))
	b = append(b, v.Subtype...)
	b = binary.AppendUvarint(b, uint64(len(v.Message)))
	b = append(b, v.Message...)
	var exp int64
	if !v.Expires.IsZero() {
		exp = v.Expires.UnixNano()
	}
	return binary.AppendVarint(b, exp)
}

var errRecord = errors.New("malformed presence record")

// DecodeRecord reads a record's stored form; anything else is an error.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) < 3 || b[0] != recordFormat || b[1]&^3 != 0 {
		return Record{}, errRecord
	}
	flags := b[1]
	rec := Record{Pending: flags&1 != 0}
	n, k := binary.Uvarint(b[2:])
	if k <= 0 || n == 0 || n > maxValues {
		return Record{}, errRecord
	}
	b = b[2+k:]
	for i := uint64(0); i < n; i++ {
		var v Value
		var err error
		if v, b, err = readValue(b); err != nil {
			return Record{}, err
		}
		if i == 0 {
			rec.Current = v
		} else {
			rec.History = append(rec.History, v)
		}
	}
	if flags&2 != 0 {
		m, k := binary.Uvarint(b)
		if k <= 0 || m == 0 || m > maxSites {
			return Record{}, errRecord
		}
		b = b[k:]
		rec.Written = make(map[string]Value, m)
		for range m {
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return Record{}, errRecord
			}
			site := string(b[k : k+int(l)])
			if site != "" && ValidateSite(site) != nil {
				return Record{}, errRecord
			}
			if _, dup := rec.Written[site]; dup {
				return Record{}, errRecord
			}
			var v Value
			var err error
			if v, b, err = readValue(b[k+int(l):]); err != nil {
				return Record{}, err
			}
			rec.Written[site] = v
		}
	}
	if len(b) != 0 {
		return Record{}, fmt.Errorf("%w: %d trailing bytes", errRecord, len(b))
	}
	return rec, nil
}

func readValue(b []byte) (Value, []byte, error) {
	var v Value
	if len(b) < 1 || int(b[0]) >= len(States()) {
		return v, nil, errRecord
	}
	v.State = State(b[0])
	b = b[1:]
	for _, dst := range []*string{&v.Subtype, &v.Message} {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > MaxFieldBytes || uint64(len(b)-k) < l {
			return v, nil, errRecord
		}
		*dst = string(b[k : k+int(l)])
		if !utf8.ValidString(*dst) {
			return v, nil, errRecord
		}
		b = b[k+int(l):]
	}
	exp, k := binary.Varint(b)
	if k <= 0 {
		return v, nil, errRecord
	}
	if exp != 0 {
		v.Expires = time.Unix(0, exp).UTC()
	}
	return v, b[k:], nil
}
