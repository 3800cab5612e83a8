// Package fastagi is a FastAGI server: it accepts connections from Asterisk's
// AGI(agi://...) application, reads the environment block, and gives a
// Handler a Session on which to run AGI commands. It knows nothing about
// presence.
//
// It is an in-repository codec rather than a wrapper of
// github.com/CyCoreSystems/agi v0.6.4, because that library's defects sit in
// the parts a wrapper would have to reuse (see README "FastAGI" and
// libdefects/fastagi_test.go, which demonstrates each one):
//   - Command reads each reply with a fresh bufio.Scanner, so bytes read
//     ahead (a HANGUP line and the reply behind it) are lost;
//   - a HANGUP line read in place of a reply ends the command with ErrHangup
//     and leaves the real reply to be read as the answer to the next
//     command, shifting every later reply by one;
//   - 510, 511 and 520 replies do not parse ("failed to parse result"), and a
//     520 usage reply is several lines of which only the first is read;
//   - SET VARIABLE values are joined with spaces, unquoted, so a value with
//     a space or quote is cut or mangled by res_agi's parse_args;
//   - environment values are TrimSpace'd, losing arguments' own spaces;
//   - Listen builds each session (reading the environment) in the accept
//     goroutine, so one silent client blocks all others, and nothing has a
//     deadline or a context.
//
// What this package does instead: one bufio.Reader per connection; replies
// are read line by line, HANGUP lines are recorded and skipped wherever
// they arrive; 510/511/520 become typed errors; values are quoted as
// parse_args unquotes them; every read and write has a deadline and honours
// the context; the accept loop only accepts, capped by a semaphore.
package fastagi
