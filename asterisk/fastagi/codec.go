package fastagi

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/presenced/presenced/internal/clip"
)

// Limits of the wire format.
const (
	// MaxLine is the longest line accepted from Asterisk.
	MaxLine = 8192
	// MaxCommand is the longest command line Asterisk reads whole: res_agi
	// reads commands into a buffer of AGI_BUF_LEN (2048) bytes, newline and
	// NUL included.
	MaxCommand = 2046
	// maxEnvLines bounds the environment block (about 20 variables plus at
	// most 127 arguments in Asterisk).
	maxEnvLines = 512
	// maxUsageLines bounds a multi-line 520 reply.
	maxUsageLines = 256
)

// ErrLineTooLong reports a line from Asterisk longer than MaxLine.
var ErrLineTooLong = errors.New("fastagi: line too long")

// Env is the environment block Asterisk sends at the start of a session.
type Env struct {
	Vars map[string]string // "agi_channel" -> "PJSIP/1001-00000004"; arguments too
	Args []string          // agi_arg_1 ... agi_arg_N in order; trailing empty args kept
	// LineBreakArg is the number of the first argument that held a line
	// break (0: none). Its value, with "\n" for each break, is a guess:
	// Asterisk's CR and LF both end a line of the environment.
	LineBreakArg int
}

// Get returns an environment variable, "" if absent.
func (e Env) Get(name string) string { return e.Vars[name] }

// Script returns agi_network_script: the path of the agi:// URL, with any
// ?query, without the leading slash ("presence/set?user=1001").
func (e Env) Script() string { return e.Vars["agi_network_script"] }

// readLine reads one line without its "\n". A line longer than MaxLine is
// an error: Asterisk never sends one, and the limit bounds memory.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err == nil {
		return string(line[:len(line)-1]), nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", ErrLineTooLong
	}
	return "", err
}

// ReadEnv reads the environment block up to its empty line. Each line is
// "name: value"; the value is everything after the first ": " with its own
// spaces kept (a dialplan argument " x" stays " x").
func ReadEnv(br *bufio.Reader) (Env, error) {
	env := Env{Vars: make(map[string]string, 32)}
	last := "" // the variable a line without a name continues
	for n := 0; ; n++ {
		if n >= maxEnvLines {
			return Env{}, fmt.Errorf("fastagi: environment block longer than %d lines", maxEnvLines)
		}
		line, err := readLine(br)
		if err != nil {
			return Env{}, fmt.Errorf("fastagi: reading the environment: %w", err)
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if (!ok || !strings.HasPrefix(name, "agi_")) && last != "" {
			// Asterisk writes a value as it is: an argument holding a line
			// break goes on over several lines. The value is kept with its
			// break, for the hook to refuse (INVALID_ARGUMENT) rather than
			// the session being dropped with no result for the dialplan.
			env.Vars[last] += "\n" + line
			if len(env.Args) > 0 && last == "agi_arg_"+strconv.Itoa(len(env.Args)) {
				env.Args[len(env.Args)-1] += "\n" + line
				if env.LineBreakArg == 0 {
					env.LineBreakArg = len(env.Args)
				}
			}
			continue
		}
		if !ok || !strings.HasPrefix(name, "agi_") || len(name) == len("agi_") {
			return Env{}, fmt.Errorf("fastagi: malformed environment line %q", clip.Clip(line))
		}
		last = name
		value = strings.TrimPrefix(value, " ")
		if _, dup := env.Vars[name]; dup {
			return Env{}, fmt.Errorf("fastagi: environment variable %s given twice", name)
		}
		env.Vars[name] = value
		if num, isArg := strings.CutPrefix(name, "agi_arg_"); isArg {
			i, err := strconv.Atoi(num)
			if err != nil || i != len(env.Args)+1 {
				return Env{}, fmt.Errorf("fastagi: environment argument %s out of order", name)
			}
			env.Args = append(env.Args, value)
		}
	}
	return env, nil
}

// Reply is Asterisk's answer to one command.
type Reply struct {
	Code   int    // 200, 510, 511 or 520
	Result string // the text after "result=" (200 only)
	Data   string // the text inside "(...)" after the result, if any
	Extra  string // anything after the result and data ("endpos=1234")
	Text   string // the text of a non-200 reply; 520 usage lines joined by "\n"
}

// Typed outcomes of non-200 replies.
var (
	// ErrInvalidCommand is a "510 Invalid or unknown command" reply.
	ErrInvalidCommand = errors.New("fastagi: 510 invalid or unknown command")
	// ErrDeadChannel is a "511 Command Not Permitted on a dead channel" reply.
	ErrDeadChannel = errors.New("fastagi: 511 command not permitted on a dead channel")
)

// UsageError is a 520 reply: Asterisk did not accept the command's syntax and
// sent its usage text.
type UsageError struct{ Usage string }

func (e *UsageError) Error() string {
	return "fastagi: 520 invalid command syntax: " + clip.Clip(e.Usage)
}

// StatusError is a reply with a status code this package does not know.
type StatusError struct {
	Code int
	Text string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fastagi: unexpected reply status %d %s", e.Code, clip.Clip(e.Text))
}

// readReply reads one reply. HANGUP lines may arrive before it (Asterisk
// writes them asynchronously, even between a command and its reply); they
// are counted in hangups and skipped.
func readReply(br *bufio.Reader, hangups *int) (Reply, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return Reply{}, err
		}
		if line == "HANGUP" {
			*hangups++
			continue
		}
		return parseReply(br, line)
	}
}

// parseReply parses a reply whose first line is line, reading the further
// lines of a multi-line ("520-...") reply from br.
func parseReply(br *bufio.Reader, line string) (Reply, error) {
	if len(line) < 4 || (line[3] != ' ' && line[3] != '-') {
		return Reply{}, fmt.Errorf("fastagi: malformed reply %q", clip.Clip(line))
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil || code < 100 {
		return Reply{}, fmt.Errorf("fastagi: malformed reply %q", clip.Clip(line))
	}
	r := Reply{Code: code}
	if line[3] == '-' {
		// Multi-line: "520-first", free lines, then "520 End of proper usage."
		lines := []string{line[4:]}
		end := line[:3] + " "
		for {
			if len(lines) > maxUsageLines {
				return Reply{}, fmt.Errorf("fastagi: %d reply longer than %d lines", code, maxUsageLines)
			}
			next, err := readLine(br)
			if err != nil {
				return Reply{}, err
			}
			if strings.HasPrefix(next, end) {
				lines = append(lines, next[4:])
				break
			}
			lines = append(lines, next)
		}
		r.Text = strings.Join(lines, "\n")
	} else {
		r.Text = line[4:]
	}
	switch code {
	case 200:
		rest, ok := strings.CutPrefix(r.Text, "result=")
		if !ok {
			return Reply{}, fmt.Errorf("fastagi: malformed reply %q", clip.Clip(line))
		}
		r.Text = ""
		r.Result, rest, _ = strings.Cut(rest, " ")
		// The data runs from the first "(" to the last ")": Asterisk does not
		// escape it, so it may itself hold parentheses (BEHAVIOUR.md 4.7).
		if strings.HasPrefix(rest, "(") {
			if end := strings.LastIndexByte(rest, ')'); end > 0 {
				r.Data = rest[1:end]
				rest = strings.TrimPrefix(rest[end+1:], " ")
			}
		}
		r.Extra = rest
		return r, nil
	case 510:
		return r, ErrInvalidCommand
	case 511:
		return r, ErrDeadChannel
	case 520:
		return r, &UsageError{Usage: r.Text}
	}
	return r, &StatusError{Code: code, Text: r.Text}
}

// Quote returns s as one argument for res_agi's parse_args: in double
// quotes, with '"' and '\' escaped by a backslash. parse_args takes any
// character after a backslash literally, and quotes keep spaces and tabs in
// the argument. A newline cannot be sent at all (it ends the command);
// callers check with ValidArg.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// ValidArg reports whether s can travel in an AGI command: no newline,
// carriage return or NUL.
func ValidArg(s string) bool { return !strings.ContainsAny(s, "\n\r\x00") }

// bare reports whether s can be sent unquoted: a non-empty run of bytes that
// parse_args leaves alone.
func bare(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\"\\\n\r\x00")
}
