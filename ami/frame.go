package ami

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/staskobzar/goami2"
)

// maxFrame bounds one AMI frame.
const maxFrame = 1 << 20

var frameEnd = []byte("\r\n\r\n")

// readFrame reads one frame up to and including its "\r\n\r\n".
func readFrame(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
		if len(buf) > maxFrame {
			return "", fmt.Errorf("ami: frame longer than %d bytes", maxFrame)
		}
		if bytes.HasSuffix(buf, frameEnd) {
			return string(buf), nil
		}
		if len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n' {
			buf = buf[:0] // a stray empty line between frames
		}
	}
}

// lfMark stands in for a bare "\n" inside a value while goami2 parses.
const lfMark = "\uE00A"

// parseFrame parses a whole frame with goami2, protecting bare line feeds
// (which its parser rejects) and recovering its panics on malformed input.
func parseFrame(frame string) (msg *goami2.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("ami: malformed frame %q", clip(frame))
		}
	}()
	protected := protectLF(frame)
	msg, err = goami2.Parse(protected)
	if err != nil {
		return nil, fmt.Errorf("ami: malformed frame %q: %w", clip(frame), err)
	}
	if msg.Len() == 0 {
		return nil, fmt.Errorf("ami: empty frame")
	}
	if protected != frame {
		out := goami2.NewMessage()
		for _, h := range msg.Headers() {
			out.AddField(h.Name, strings.ReplaceAll(h.Value, lfMark, "\n"))
		}
		msg = out
	}
	return msg, nil
}

func protectLF(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			b.WriteString(lfMark)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
