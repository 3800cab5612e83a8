package xuc

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/internal/linefile"
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
	err := linefile.Read(r, "login", func(line string) (string, error) {
		parts := strings.Split(line, ":")
		if len(parts) != 3 && len(parts) != 4 {
			return "", errors.New("want login:bcrypt-hash:extension[:mailbox]")
		}
		u := User{Login: parts[0], Hash: []byte(parts[1]), Extension: parts[2], Mailbox: parts[2] + "@default"}
		if len(parts) == 4 {
			u.Mailbox = parts[3]
		}
		if err := presence.ValidateUser(u.Login); err != nil {
			return "", fmt.Errorf("login: %w", err)
		}
		if err := presence.ValidateUser(u.Extension); err != nil {
			return "", fmt.Errorf("extension: %w", err)
		}
		if err := voicemail.ValidMailbox(u.Mailbox); err != nil {
			return "", err
		}
		if _, err := bcrypt.Cost(u.Hash); err != nil {
			return "", fmt.Errorf("the password hash is not bcrypt's (make one with: presenced xuc-passwd): %w", err)
		}
		out[u.Login] = u
		return u.Login, nil
	})
	if err != nil {
		return nil, err
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
