package voicemail

import (
	"testing"
)

type m map[string]string

func (f m) Field(k string) string { return f[k] }

// The frames of BEHAVIOUR.md 4.20, and garbage.
func TestParse(t *testing.T) {
	c, err := FromMessageWaiting(m{"Event": "MessageWaiting", "Mailbox": "1001@default", "Waiting": "0", "New": "0", "Old": "1"})
	if err != nil || c != (Count{Mailbox: "1001@default", Old: 1}) || c.Waiting() {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = FromUserEntry(m{"VMContext": "default", "VoiceMailbox": "1001", "Fullname": "Alice", "NewMessageCount": "2", "OldMessageCount": "0"})
	if err != nil || c != (Count{Mailbox: "1001@default", New: 2}) || !c.Waiting() {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []m{
		{"Mailbox": "1001", "New": "1", "Old": "0"},
		{"Mailbox": "1001@default", "New": "-1", "Old": "0"},
		{"Mailbox": "1001@default", "New": "x", "Old": "0"},
		{"Mailbox": "1001@default", "New": "1"},
		{"Mailbox": "${SHELL(id)}@default", "New": "1", "Old": "0"},
		{"Mailbox": "1001@de fault", "New": "1", "Old": "0"},
	} {
		if c, err := FromMessageWaiting(bad); err == nil {
			t.Errorf("%v read as %+v", bad, c)
		}
	}
}

func FuzzMessageWaiting(f *testing.F) {
	f.Add("1001@default", "1", "0")
	f.Add("@", "-0", "99999999999")
	f.Fuzz(func(t *testing.T, box, nw, old string) {
		c, err := FromMessageWaiting(m{"Mailbox": box, "New": nw, "Old": old})
		if err != nil {
			return
		}
		if ValidMailbox(c.Mailbox) != nil || c.New < 0 || c.Old < 0 {
			t.Fatalf("%+v taken", c)
		}
	})
}
