package ami

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/staskobzar/goami2"

	"github.com/presenced/presenced/internal/clip"
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

// lfMark and crMark stand in for a bare "\n" or "\r" inside a value
// while goami2 parses: Asterisk sends raw text (PresenceStatus,
// PresenceState, Getvar) with its line breaks and carriage returns as they
// are (BEHAVIOUR.md 4.12), and goami2 rejects both.
const (
	lfMark = "\uE00A"
	crMark = "\uE00D"
)

// parseFrame parses a whole frame with goami2, protecting bare line feeds
// and carriage returns (which its parser rejects) and recovering its panics
// on malformed input.
func parseFrame(frame string) (msg *goami2.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("ami: malformed frame %q", clip.Clip(frame))
		}
	}()
	protected := protectBare(frame)
	msg, err = goami2.Parse(protected)
	if err != nil {
		return nil, fmt.Errorf("ami: malformed frame %q: %w", clip.Clip(frame), err)
	}
	if msg.Len() == 0 {
		return nil, fmt.Errorf("ami: empty frame")
	}
	if protected != frame {
		out := goami2.NewMessage()
		for _, h := range msg.Headers() {
			out.AddField(h.Name, unprotect.Replace(h.Value))
		}
		msg = out
	}
	return msg, nil
}

var unprotect = strings.NewReplacer(lfMark, "\n", crMark, "\r")

// protectBare replaces every "\n" not preceded by "\r" and every "\r" not
// followed by "\n" with its mark.
func protectBare(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\n' && (i == 0 || s[i-1] != '\r'):
			b.WriteString(lfMark)
		case s[i] == '\r' && (i+1 == len(s) || s[i+1] != '\n'):
			b.WriteString(crMark)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
