package xuc

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/voicemail"
)

// User is one login of the xuc API.
type User struct {
	Login string
	// Hash is the password's bcrypt hash ($2a$, $2b$ or $2y$).
	Hash []byte
	// Extension is the user's number: its hint (the phone's state and
	// calls), its presence (CustomPresence:<extension>, DND) and forwards.
	Extension string
	// Mailbox is the voicemail box shown ("<extension>@default" unless
	// the file names one).
	Mailbox string
}

// ParseUsers reads a users file: a line per user,
//
//	login:bcrypt-hash:extension[:mailbox]
//
// blank lines and lines starting with # ignored. Logins and extensions
// follow presenced's user names (letters, digits, _ . - + @); a hash that
// bcrypt cannot read, a repeated login or a line of another shape is an
// error naming its line.
func ParseUsers(r io.Reader) (map[string]User, error) {
	out := map[string]User{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 && len(parts) != 4 {
			return nil, fmt.Errorf("line %d: want login:bcrypt-hash:extension[:mailbox]", n)
		}
		u := User{Login: parts[0], Hash: []byte(parts[1]), Extension: parts[2], Mailbox: parts[2] + "@default"}
		if len(parts) == 4 {
			u.Mailbox = parts[3]
		}
		if err := presence.ValidateUser(u.Login); err != nil {
			return nil, fmt.Errorf("line %d: login: %w", n, err)
		}
		if err := presence.ValidateUser(u.Extension); err != nil {
			return nil, fmt.Errorf("line %d: extension: %w", n, err)
		}
		if err := voicemail.ValidMailbox(u.Mailbox); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, err := bcrypt.Cost(u.Hash); err != nil {
			return nil, fmt.Errorf("line %d: the password hash is not bcrypt's (make one with: presenced xuc-passwd): %w", n, err)
		}
		if _, dup := out[u.Login]; dup {
			return nil, fmt.Errorf("line %d: login %q listed twice", n, u.Login)
		}
		out[u.Login] = u
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the users file: %w", err)
	}
	return out, nil
}

// HashPassword returns a bcrypt hash of a password for the users file.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", fmt.Errorf("empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return string(h), nil
}
