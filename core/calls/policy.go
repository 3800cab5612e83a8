package calls

import (
	"errors"
	"fmt"
	"strings"

	"github.com/presenced/presenced/core/presence"
)

// ErrNotAllowed is a number the dial policy refuses.
var ErrNotAllowed = errors.New("not a number presenced may dial")

// DefaultAllow is the dial policy's allow list when the admin gives none:
// digits, with an optional leading "+". No "*" or "#": the sample dialplan
// (like most) has feature codes there, and a forward to "*721001" or a
// click to "*78" would move someone else's forward or toggle a DND.
const DefaultAllow = "_X!,_+X!"

// Policy is what presenced may dial and forward to, by patterns in
// Asterisk's own syntax: a number is allowed when an allow pattern
// matches it and no deny pattern does. Every way in (REST, WebSocket,
// xuc, hooks) goes through one Policy.
type Policy struct {
	allow, deny []pattern
	allowText   string
	denyText    string
}

// ParsePolicy reads the allow and deny lists (PRESENCED_DIAL_ALLOW and
// PRESENCED_DIAL_DENY): comma-separated patterns, "_" for an Asterisk
// pattern ("_00X.", "_+33[1-9]XXXXXXXX", "_1-800-NXX-XXXX"), else a
// number matched exactly. An empty allow list is DefaultAllow.
func ParsePolicy(allow, deny string) (*Policy, error) {
	if strings.TrimSpace(allow) == "" {
		allow = DefaultAllow
	}
	p := &Policy{}
	var err error
	if p.allow, p.allowText, err = parsePatterns(allow); err != nil {
		return nil, fmt.Errorf("allow list: %w", err)
	}
	if p.deny, p.denyText, err = parsePatterns(deny); err != nil {
		return nil, fmt.Errorf("deny list: %w", err)
	}
	return p, nil
}

// DefaultPolicy is the policy with DefaultAllow and no deny list.
func DefaultPolicy() *Policy {
	p, err := ParsePolicy("", "")
	if err != nil {
		panic(err) // DefaultAllow is a constant that parses
	}
	return p
}

// Check refuses a number that is not one (ValidNumber), that no allow
// pattern matches, or that a deny pattern matches. A nil Policy is
// DefaultPolicy.
func (p *Policy) Check(number string) error {
	if p == nil {
		p = defaultPolicy
	}
	if err := ValidNumber(number); err != nil {
		return err
	}
	for _, d := range p.deny {
		if d.match(number) {
			return fmt.Errorf("%w: %q matches %s in the deny list (PRESENCED_DIAL_DENY)", ErrNotAllowed, number, d.text)
		}
	}
	for _, a := range p.allow {
		if a.match(number) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q matches nothing in the allow list %s (PRESENCED_DIAL_ALLOW)", ErrNotAllowed, number, p.allowText)
}

var defaultPolicy = DefaultPolicy()

// Refuse is Check as a coded error about what (a forward, a number to
// dial): NOT_ALLOWED for a number the policy refuses, INVALID_ARGUMENT
// for one that is no number.
func (p *Policy) Refuse(what, number string) error {
	err := p.Check(number)
	if err == nil {
		return nil
	}
	code := presence.CodeInvalidArgument
	if errors.Is(err, ErrNotAllowed) {
		code = presence.CodeNotAllowed
	}
	return presence.WrapError(code, err, what+": "+err.Error())
}

// String is the policy as the settings give it, for the start-up log.
func (p *Policy) String() string {
	return "allow " + p.allowText + " deny " + p.denyText
}

func parsePatterns(list string) ([]pattern, string, error) {
	var out []pattern
	var texts []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		pt, err := parsePattern(s)
		if err != nil {
			return nil, "", err
		}
		out = append(out, pt)
		texts = append(texts, s)
	}
	if len(texts) == 0 {
		return nil, "(none)", nil
	}
	return out, strings.Join(texts, ","), nil
}

// pattern is an Asterisk extension pattern: a class per position, then
// optionally "." (one or more digits) or "!" (zero or more).
type pattern struct {
	text    string
	classes []string // the characters each position takes
	tail    byte     // '.', '!' or 0
}

const numberChars = "0123456789*#+"

// parsePattern reads one pattern. Asterisk's syntax: "_" starts a
// pattern; X is 0-9, Z 1-9, N 2-9, [...] a set with ranges ("[1-5*]");
// "." ends it with one or more digits, "!" with zero or more; "-"
// outside brackets is ignored (a separator for people). Without "_",
// the text is a number that matches only itself.
func parsePattern(s string) (pattern, error) {
	pt := pattern{text: s}
	body, isPattern := strings.CutPrefix(s, "_")
	if !isPattern {
		if err := ValidNumber(s); err != nil {
			return pattern{}, fmt.Errorf("%q: not a number, and not a pattern (which starts with _): %w", s, err)
		}
		for _, r := range s {
			pt.classes = append(pt.classes, string(r))
		}
		return pt, nil
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '-':
			continue
		case c == '.' || c == '!':
			if i != len(body)-1 {
				return pattern{}, fmt.Errorf("%q: %q may only end a pattern", s, c)
			}
			pt.tail = c
		case c == 'X' || c == 'x':
			pt.classes = append(pt.classes, "0123456789")
		case c == 'Z' || c == 'z':
			pt.classes = append(pt.classes, "123456789")
		case c == 'N' || c == 'n':
			pt.classes = append(pt.classes, "23456789")
		case c == '[':
			end := strings.IndexByte(body[i:], ']')
			if end < 0 {
				return pattern{}, fmt.Errorf("%q: a [ without its ]", s)
			}
			set, err := charSet(body[i+1 : i+end])
			if err != nil {
				return pattern{}, fmt.Errorf("%q: %w", s, err)
			}
			pt.classes = append(pt.classes, set)
			i += end
		case strings.IndexByte(numberChars, c) >= 0:
			pt.classes = append(pt.classes, string(c))
		default:
			return pattern{}, fmt.Errorf("%q: %q is not one of the digits, *, #, +, X, Z, N, [...], \".\" and \"!\"", s, c)
		}
	}
	if len(pt.classes) == 0 && pt.tail == 0 {
		return pattern{}, fmt.Errorf("%q: an empty pattern", s)
	}
	return pt, nil
}

// charSet expands the inside of brackets: "1-5*" is "12345*".
func charSet(in string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		if strings.IndexByte(numberChars, c) < 0 {
			return "", fmt.Errorf("[%s]: %q is not a digit, *, # or +", in, c)
		}
		if i+2 < len(in) && in[i+1] == '-' {
			hi := in[i+2]
			if c < '0' || c > '9' || hi < c || hi > '9' {
				return "", fmt.Errorf("[%s]: %c-%c is not a range of digits", in, c, hi)
			}
			for d := c; d <= hi; d++ {
				b.WriteByte(d)
			}
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("[]: an empty set")
	}
	return b.String(), nil
}

func (p pattern) match(n string) bool {
	if len(n) < len(p.classes) {
		return false
	}
	for i, cl := range p.classes {
		if strings.IndexByte(cl, n[i]) < 0 {
			return false
		}
	}
	rest := len(n) - len(p.classes)
	// Unlike the dialplan's, "." and "!" stand for digits only: a
	// wildcard never lets a "*" or "#" through; a feature code that may
	// be dialled is spelled out.
	if strings.Trim(n[len(p.classes):], "0123456789") != "" {
		return false
	}
	switch p.tail {
	case '.':
		return rest >= 1
	case '!':
		return true
	}
	return rest == 0
}
