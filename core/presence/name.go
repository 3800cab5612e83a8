package presence

import (
	"strings"

	"github.com/presenced/presenced/internal/clip"
)

// MaxUserBytes is the longest user name accepted.
const MaxUserBytes = 64

// ProviderPrefix is the only presence provider technology PRESENCE_STATE()
// can write.
const ProviderPrefix = "CustomPresence:"

// ValidateUser checks a user name against the allow-list: 1 to 64 bytes of
// ASCII letters, digits and _ . - + @. Every name that ends up inside a
// dialplan function name (PRESENCE_STATE(CustomPresence:<user>)) passes here
// first, so no comma, parenthesis, quote or ${} can reach Asterisk.
func ValidateUser(user string) error {
	if user == "" {
		return Errorf(CodeInvalidUser, "no user given")
	}
	if len(user) > MaxUserBytes {
		return Errorf(CodeInvalidUser, "user name is longer than %d bytes", MaxUserBytes)
	}
	for i := 0; i < len(user); i++ {
		if !userByte(user[i]) {
			return Errorf(CodeInvalidUser, "user name %q may contain only letters, digits and _ . - + @", clip.Clip(user))
		}
	}
	return nil
}

func userByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '_', c == '.', c == '-', c == '+', c == '@':
		return true
	}
	return false
}

// Provider returns the CustomPresence provider of a user. The user must have
// passed ValidateUser.
func Provider(user string) string { return ProviderPrefix + user }

// ParseProvider returns the user of a "CustomPresence:<user>" provider name.
// The technology is matched case-insensitively, as Asterisk does.
func ParseProvider(provider string) (string, error) {
	if len(provider) < len(ProviderPrefix) || !strings.EqualFold(provider[:len(ProviderPrefix)], ProviderPrefix) {
		return "", Errorf(CodeInvalidUser, "presence provider %q is not a CustomPresence: provider", clip.Clip(provider))
	}
	user := provider[len(ProviderPrefix):]
	if err := ValidateUser(user); err != nil {
		return "", err
	}
	return user, nil
}

// DNDDevice is the device presenced drives to show a user's DND on every
// phone's BLF key: BUSY while DND is on, INVALID when it is off (an INVALID
// device never hides the real phone's state; BEHAVIOUR.md 4.10).
func DNDDevice(user string) string { return "Stasis:presenced-dnd-" + user }

// MaxSiteBytes is the longest site name accepted.
const MaxSiteBytes = 32

// ValidateSite checks a site's name (PRESENCED_SITE): 1 to 32 bytes of
// lower-case ASCII letters, digits and "_". It names hints
// ("paris/1001@internal") and the devices that show another site's hints
// (Stasis:presenced-remote-paris-1001), where a "-" or "/" would make the
// name ambiguous.
func ValidateSite(site string) error {
	if site == "" || len(site) > MaxSiteBytes {
		return Errorf(CodeInvalidArgument, "a site name has 1 to %d bytes", MaxSiteBytes)
	}
	for i := 0; i < len(site); i++ {
		if c := site[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return Errorf(CodeInvalidArgument, "site name %q may contain only lower-case letters, digits and _", clip.Clip(site))
		}
	}
	return nil
}
