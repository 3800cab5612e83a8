// Package agitest plays Asterisk's side of FastAGI for tests: it connects
// like AGI(agi://...), sends the environment block exactly as Asterisk 22
// does, parses each command with a copy of res_agi's parse_args, evaluates
// it against an emulated Asterisk (package astemu) and answers with the
// bytes BEHAVIOUR.md records, faults included: "200 result=1" for rejected
// presence writes, HANGUP lines that arrive before a reply, 511 on a dead
// channel, multi-line 520 usage replies, 510 for unknown commands.
package agitest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/presenced/presenced/internal/astemu"
)

// Call is one AGI() application call.
type Call struct {
	Ast      *astemu.Asterisk
	Script   string   // the agi:// path after the host, without "/": "presence/set?x=y"
	Args     []string // dialplan arguments after the URL (quotes already stripped)
	CallerID string   // "" sends "unknown", as Asterisk does for no caller number
	Channel  string   // default "PJSIP/1001-00000004"

	// HangupAfter, if > 0, hangs the channel up right after the reply to
	// that command (1-based): the HANGUP line then reaches the server before
	// the reply to its next command, as in hangup-during-command.jsonl.
	HangupAfter int
	// CloseAt, if > 0, closes the connection when that command arrives,
	// without answering it (Asterisk going away mid-session).
	CloseAt int

	mu       sync.Mutex
	ch       *astemu.Channel
	commands []string
	dead     bool
}

// Vars returns the channel variables after the call.
func (c *Call) Vars() map[string]string { return c.channel().Vars() }

// Var returns one channel variable.
func (c *Call) Var(name string) string { return c.channel().Vars()[name] }

func (c *Call) channel() *astemu.Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Ast == nil {
		c.Ast = astemu.New()
	}
	if c.ch == nil {
		c.ch = astemu.NewChannel(c.Ast)
	}
	return c.ch
}

// Commands returns the command lines received, without their newlines.
func (c *Call) Commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.commands...)
}

// EnvBlock returns the environment block Asterisk 22 sends, byte for byte
// in its order (BEHAVIOUR.md 4.7).
func (c *Call) EnvBlock(addr string) string {
	channel := c.Channel
	if channel == "" {
		channel = "PJSIP/1001-00000004"
	}
	tech, _, _ := strings.Cut(channel, "/")
	cid := c.CallerID
	if cid == "" {
		cid = "unknown"
	}
	var b strings.Builder
	kv := func(k, v string) { b.WriteString("agi_" + k + ": " + v + "\n") }
	kv("network", "yes")
	kv("network_script", c.Script)
	kv("request", "agi://"+addr+"/"+c.Script)
	kv("channel", channel)
	kv("language", "en")
	kv("type", tech)
	kv("uniqueid", "1795334483.54")
	kv("version", "22.10.1")
	kv("callerid", cid)
	kv("calleridname", "unknown")
	kv("callingpres", "0")
	kv("callingani2", "0")
	kv("callington", "0")
	kv("callingtns", "0")
	kv("dnid", "7000")
	kv("rdnis", "unknown")
	kv("context", "internal")
	kv("extension", "7000")
	kv("priority", "1")
	kv("enhanced", "0.0")
	kv("accountcode", "")
	kv("threadid", "140405770794688")
	for i, a := range c.Args {
		kv("arg_"+strconv.Itoa(i+1), a)
	}
	b.WriteString("\n")
	return b.String()
}

// Run connects to a FastAGI server at addr and plays the call until the
// server closes the connection, which is how a FastAGI script ends.
func (c *Call) Run(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("agitest: connecting: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	return c.Serve(conn, addr)
}

// Serve plays the call on an established connection.
func (c *Call) Serve(conn io.ReadWriter, addr string) error {
	ch := c.channel()
	if _, err := io.WriteString(conn, c.EnvBlock(addr)); err != nil {
		return fmt.Errorf("agitest: sending the environment: %w", err)
	}
	br := bufio.NewReader(conn)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil // the script ended
		}
		if err != nil {
			return fmt.Errorf("agitest: reading command %d: %w", n, err)
		}
		line = strings.TrimSuffix(line, "\n")
		c.mu.Lock()
		c.commands = append(c.commands, line)
		c.mu.Unlock()
		if n == c.CloseAt {
			return nil
		}
		reply := c.eval(ch, line)
		if n == c.HangupAfter {
			c.mu.Lock()
			c.dead = true
			c.mu.Unlock()
			reply += "HANGUP\n"
		}
		if _, err := io.WriteString(conn, reply); err != nil {
			return fmt.Errorf("agitest: answering command %d: %w", n, err)
		}
	}
}

const (
	replyDead    = "511 Command Not Permitted on a dead channel or intercept routine\n"
	replyUnknown = "510 Invalid or unknown command\n"
)

func usage(text string) string {
	return "520-Invalid command syntax.  Proper usage follows:\n" + text + "\n520 End of proper usage.\n"
}

// eval answers one command line as res_agi does.
func (c *Call) eval(ch *astemu.Channel, line string) string {
	argv := ParseArgs(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	word := func(i int) string {
		if i < len(argv) {
			return strings.ToUpper(argv[i])
		}
		return ""
	}
	switch {
	case word(0) == "SET" && word(1) == "VARIABLE":
		if len(argv) != 4 {
			return usage("Sets a variable to the current channel.")
		}
		ch.Set(argv[2], argv[3]) // a rejected function write still answers 1
		return "200 result=1\n"
	case word(0) == "GET" && word(1) == "VARIABLE":
		if len(argv) != 3 {
			return usage("Returns 0 if variableName is not set. Returns 1 if variableName is set and returns the variable in parentheses.")
		}
		if v, ok := ch.Get(argv[2]); ok {
			return "200 result=1 (" + v + ")\n"
		}
		return "200 result=0\n"
	case word(0) == "GET" && word(1) == "FULL" && word(2) == "VARIABLE":
		if len(argv) < 4 || len(argv) > 5 {
			return usage("Evaluates the given expression against the channel specified by channelname, or the current channel if channelname is not set.")
		}
		return "200 result=1 (" + substitute(ch, argv[3]) + ")\n"
	case word(0) == "NOOP":
		return "200 result=0\n"
	case word(0) == "VERBOSE":
		return "200 result=1\n"
	case word(0) == "EXEC":
		return "200 result=0\n"
	case word(0) == "ANSWER":
		if c.dead {
			return replyDead
		}
		return "200 result=0\n"
	case word(0) == "CHANNEL" && word(1) == "STATUS":
		if c.dead {
			return replyDead
		}
		return "200 result=6\n"
	case word(0) == "STREAM" && word(1) == "FILE":
		if c.dead {
			return replyDead
		}
		return "200 result=0 endpos=0\n"
	case word(0) == "HANGUP":
		c.dead = true
		return "200 result=1\nHANGUP\n"
	}
	return replyUnknown
}

// substitute expands ${NAME} and ${FUNC(args)} (not nested), enough for
// GET FULL VARIABLE in the recorded sessions.
func substitute(ch *astemu.Channel, s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		name := s[i+2 : i+j]
		if name == "EXTEN" {
			b.WriteString("7000")
		} else if v, ok := ch.Get(name); ok {
			b.WriteString(v)
		}
		s = s[i+j+1:]
	}
}

// ParseArgs splits a command line as res_agi.c parse_args does: spaces and
// tabs separate arguments, double quotes group (and start an argument even
// when empty), a backslash makes the next character literal, inside or
// outside quotes.
func ParseArgs(s string) []string {
	var argv []string
	var cur []byte
	quoted, escaped, whitespace := false, false, true
	inArg := false
	flush := func() {
		if inArg {
			argv = append(argv, string(cur))
			cur = cur[:0]
			inArg = false
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"' && !escaped:
			quoted = !quoted
			if quoted && whitespace {
				inArg = true
				whitespace = false
			}
		case (ch == ' ' || ch == '\t') && !quoted && !escaped:
			whitespace = true
			flush()
		case ch == '\\' && !escaped:
			escaped = true
		default:
			if whitespace {
				inArg = true
				whitespace = false
			}
			cur = append(cur, ch)
			escaped = false
		}
	}
	flush()
	return argv
}
