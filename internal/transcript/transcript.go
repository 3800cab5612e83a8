// Package transcript loads the recorded FastAGI sessions in
// testdata/asterisk/transcripts for tests.
package transcript

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Line is one recorded line: From is "asterisk" or "server", Data the exact
// bytes including the newline.
type Line struct {
	From string
	Data string
}

// Dir returns the directory of the recorded transcripts.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "asterisk", "transcripts")
}

// Load reads a transcript file by name ("presence-writes.jsonl") and
// returns its protocol lines, commentary dropped, the Latin-1 text turned
// back into the bytes that were on the wire.
func Load(name string) ([]Line, error) {
	f, err := os.Open(filepath.Join(Dir(), name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var rec struct {
			From string `json:"from"`
			Data string `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if rec.From == "" {
			continue
		}
		b := make([]byte, 0, len(rec.Data))
		for _, r := range rec.Data {
			if r > 0xff {
				return nil, fmt.Errorf("%s:%d: character %U is not Latin-1", name, n, r)
			}
			b = append(b, byte(r))
		}
		out = append(out, Line{From: rec.From, Data: string(b)})
	}
	return out, sc.Err()
}
