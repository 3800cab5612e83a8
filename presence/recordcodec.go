package presence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// A record is stored (bbolt, and a cluster's key-value bucket) in a
// compact binary form rather than JSON: it is written on every hook, and encoding/json's reflection was a tenth of a
// hook's CPU (see BENCHMARKS.md).
//
//	byte     format (1)
//	byte     flags (bit 0: pending)
//	uvarint  number of values n (>= 1): the current value, then the history, oldest first
//	n times: byte state, uvarint len + subtype, uvarint len + message, varint expiry (Unix ns, 0 = none)
const recordFormat = 1

// maxValues bounds the values of one record when decoding.
const maxValues = 1 + 1000

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
	b = append(b, recordFormat, flags)
	b = binary.AppendUvarint(b, uint64(1+len(rec.History)))
	b = appendValue(b, rec.Current)
	for _, v := range rec.History {
		b = appendValue(b, v)
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
	if len(b) < 3 || b[0] != recordFormat || b[1]&^1 != 0 {
		return Record{}, errRecord
	}
	rec := Record{Pending: b[1]&1 != 0}
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
