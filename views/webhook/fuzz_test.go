package webhook

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
)

// An accepted action URL, filled in with hostile values, is still a URL
// to the same host, with the values inside the path and query only.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"http://crm.local/p?user={user}&state={state}", "https://x/{exten}/{context}?m={message}#",
		"http://x/{", "http://x/}", "http://{user}/", "http://u:p@x/{id}", "ftp://x/{user}", "http://x:99/a?b={time}&c={hint_state}",
	} {
		f.Add(s, "a/b?c=d&e#f g")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		tp, err := parseTemplate(tmpl)
		if err != nil || len(value) > presence.MaxFieldBytes {
			// Real values are at most 255 bytes; longer ones only make a
			// template of hundreds of placeholders slow to fill in.
			return
		}
		base, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(tmpl))
		if err != nil {
			return
		}
		v := presence.Value{State: presence.Away, Subtype: value, Message: value}
		for _, ev := range []Event{
			{ID: "1", Type: TypePresence, Time: time.Unix(0, 0), Provider: "CustomPresence:" + value, Presence: &v},
			{ID: "2", Type: TypeHint, Hint: &hints.State{Hint: hints.Hint{Exten: value, Context: value}, Presence: v}},
		} {
			u, err := url.Parse(tp.expand(ev))
			if err != nil {
				t.Fatalf("%q with %q: %v", tmpl, value, err)
			}
			if u.Host != base.Host || u.Scheme != base.Scheme || u.Fragment != "" {
				t.Fatalf("%q with %q went to %s://%s#%s", tmpl, value, u.Scheme, u.Host, u.Fragment)
			}
		}
	})
}

// A log entry read back is either refused or decodes, and what
// encodes decodes to the same.
func FuzzDecodeValue(f *testing.F) {
	st := hints.State{Hint: hints.Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001"}}}
	for _, it := range []change.Change{
		{Kind: hints.KindHint, Key: "1001@internal", Value: st},
		{Kind: hints.KindPresence, Key: "CustomPresence:1001", Value: hints.ProviderPresence{Value: presence.Value{State: presence.DND, Message: "x,y"}}},
	} {
		v, _ := watch.Encode(it, time.Unix(1, 2))
		f.Add(v)
	}
	f.Add([]byte{})
	kinds, _ := change.NewKinds(hints.Kinds())
	f.Fuzz(func(t *testing.T, v []byte) {
		ev, err := decodeValue(kinds, 7, "k", v)
		if err != nil {
			return
		}
		if ev.ID != "7" || (ev.Hint == nil) == (ev.Presence == nil) {
			t.Fatalf("decoded %+v", ev)
		}
	})
}

// Any spec is refused with INVALID_ARGUMENT or accepted as a webhook whose
// target is an http(s) URL with a host.
func FuzzValidate(f *testing.F) {
	f.Add("https://crm.example/hook", "", "", true, "1001@internal")
	f.Add("http://crm.local/p?user={user}&state={state}", "GET", "0123456789abcdef", false, "")
	f.Add("http://u:p@x/{", "get", "short", false, "@")
	f.Fuzz(func(t *testing.T, u, method, secret string, all bool, hint string) {
		spec := Spec{URL: u, Method: method, Secret: secret, All: all}
		if hint != "" {
			spec.Hints = []string{hint}
		}
		s, _, err := validate(spec)
		if err != nil {
			if presence.ErrorCode(err) != presence.CodeInvalidArgument {
				t.Fatalf("%+v: %v", spec, err)
			}
			return
		}
		probe := strings.NewReplacer("{", "", "}", "").Replace(s.URL)
		pu, err := url.Parse(probe)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || len(s.Secret) < minSecret {
			t.Fatalf("accepted %+v as %+v", spec, s)
		}
	})
}
