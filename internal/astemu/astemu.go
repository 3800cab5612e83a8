// Package astemu is a model of the parts of Asterisk 22 that presenced
// talks to, for tests: astdb, the PRESENCE_STATE() and DB() dialplan
// functions, and channel variables. It follows BEHAVIOUR.md literally,
// including the unkind parts: rejected presence writes still "succeed", and
// the value is split on commas with no escaping.
//
// It deliberately shares no code with package presence, so that the two
// cross-check each other.
package astemu

import (
	"sort"
	"strings"
	"sync"
)

var presenceStates = []string{"not_set", "unavailable", "available", "away", "xa", "chat", "dnd"}

// Asterisk holds the shared state of one emulated Asterisk.
type Asterisk struct {
	// wmu orders writes and their announcements: watchers hear of writes
	// in the order astdb took them, as AMI clients do.
	wmu      sync.Mutex
	mu       sync.Mutex
	db       map[string]string // "family/key" -> value
	log      []string
	watchers map[int]func(PresenceChange)
	nextW    int

	// RejectPresence makes every PRESENCE_STATE() write fail as Asterisk
	// fails a value it does not accept: a log line, the old value kept, and
	// still a success reply on the wire.
	RejectPresence bool
	// NoPresenceFunc emulates func_presencestate not being loaded: writes are
	// ignored and reads fail (GET VARIABLE answers result=0).
	NoPresenceFunc bool
}

// New returns an empty Asterisk.
func New() *Asterisk {
	return &Asterisk{db: map[string]string{}, watchers: map[int]func(PresenceChange){}}
}

// PresenceChange is what Asterisk publishes (ast_presence_state_changed)
// after every accepted PRESENCE_STATE() write, changed or not, whatever
// the path of the write (a channel's Set, AGI, ARI, AMI Setvar, the CLI):
// the provider as written and the decoded state, subtype and message.
type PresenceChange struct {
	Provider                string
	State, Subtype, Message string
}

// Watch calls f after every accepted presence write, in write order, on
// the writer's goroutine, with no lock of the Asterisk held; f must not
// write presence itself. The returned func stops it.
func (a *Asterisk) Watch(f func(PresenceChange)) (stop func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextW++
	id := a.nextW
	a.watchers[id] = f
	return func() {
		a.mu.Lock()
		delete(a.watchers, id)
		a.mu.Unlock()
	}
}

// DBPut sets an astdb value as `database put` does: no event is sent, yet
// PRESENCE_STATE() reads it at once (BEHAVIOUR.md 4.19).
func (a *Asterisk) DBPut(family, key, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.db[family+"/"+key] = value
}

// Providers returns the CustomPresence providers astdb holds, in the order
// a PresenceStateList of a real one listed them (BEHAVIOUR.md 4.12: 1003,
// 1002, 1001).
func (a *Asterisk) Providers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k := range a.db {
		if name, ok := strings.CutPrefix(k, "CustomPresence/"); ok {
			out = append(out, "CustomPresence:"+name)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// SetPresence changes a provider's presence as the CLI or another
// dialplan would, outside presenced: with the base64 option, so that any
// text goes through; it reports whether Asterisk took it.
func (a *Asterisk) SetPresence(provider, state, subtype, message string) bool {
	return a.WriteFunction("PRESENCE_STATE("+provider+")", state+","+base64Encode(subtype)+","+base64Encode(message)+",e")
}

// Presence reads a provider's presence, decoded, as PRESENCE_STATE() reads
// it; ok is false when Asterisk cannot evaluate it.
func (a *Asterisk) Presence(provider string) (state, subtype, message string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.presenceFields(provider)
}

// DBGet returns an astdb value.
func (a *Asterisk) DBGet(family, key string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.db[family+"/"+key]
	return v, ok
}

// Log returns the warnings and notices logged so far.
func (a *Asterisk) Log() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.log...)
}

func (a *Asterisk) logf(s string) { a.log = append(a.log, s) }

// WriteFunction evaluates an assignment to a dialplan function, as
// `Set(FUNC(args)=value)` does. It reports whether the function accepted
// the value; AGI and ARI never tell the client.
func (a *Asterisk) WriteFunction(name, value string) bool {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	ok, ch := a.writeFunction(name, value)
	if ok {
		a.mu.Lock()
		ws := make([]func(PresenceChange), 0, len(a.watchers))
		ids := make([]int, 0, len(a.watchers))
		for id := range a.watchers {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		for _, id := range ids {
			ws = append(ws, a.watchers[id])
		}
		a.mu.Unlock()
		for _, f := range ws {
			f(ch)
		}
	}
	return ok
}

func (a *Asterisk) writeFunction(name, value string) (bool, PresenceChange) {
	fn, args, ok := splitFunc(name)
	if !ok || !strings.EqualFold(fn, "PRESENCE_STATE") || a.NoPresenceFunc {
		a.mu.Lock()
		a.logf("ERROR pbx_functions.c: Function " + fn + " not registered")
		a.mu.Unlock()
		return false, PresenceChange{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(args) < 15 || !strings.EqualFold(args[:15], "CustomPresence:") {
		a.logf("WARNING func_presencestate.c: The PRESENCE_STATE function can only set CustomPresence: presence providers.")
		return false, PresenceChange{}
	}
	if len(args) == 15 {
		a.logf("WARNING func_presencestate.c: PRESENCE_STATE function called with no custom device name!")
		return false, PresenceChange{}
	}
	if _, _, _, _, ok := parseData(value); !ok {
		a.logf("WARNING func_presencestate.c: Invalid arguments to PRESENCE_STATE")
		return false, PresenceChange{}
	}
	if a.RejectPresence {
		a.logf("WARNING func_presencestate.c: Invalid arguments to PRESENCE_STATE (forced by the test)")
		return false, PresenceChange{}
	}
	a.db["CustomPresence/"+args[15:]] = value
	st, sub, msg, _ := a.presenceFields(args)
	return true, PresenceChange{Provider: args, State: st, Subtype: sub, Message: msg}
}

// ReadFunction evaluates a dialplan function read. ok is false when the
// function fails (AGI then answers "200 result=0").
func (a *Asterisk) ReadFunction(expr string) (string, bool) {
	fn, args, ok := splitFunc(expr)
	if !ok {
		return "", false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch strings.ToUpper(fn) {
	case "DB":
		v, ok := a.db[args]
		if !ok {
			return "", false
		}
		return v, true
	case "PRESENCE_STATE":
		if a.NoPresenceFunc {
			return "", false
		}
		return a.presenceRead(args)
	}
	return "", false
}

// presenceRead mirrors presence_read in func_presencestate.c for a single
// CustomPresence provider: an unknown field reads as empty, and a provider
// Asterisk cannot evaluate (another technology, an unparseable stored
// value) makes the read fail.
func (a *Asterisk) presenceRead(args string) (string, bool) {
	parts := strings.SplitN(args, ",", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		a.logf("WARNING func_presencestate.c: PRESENCE_STATE reading requires both presence provider and presence field arguments.")
		return "", false
	}
	provider, field := parts[0], parts[1]
	encode := len(parts) > 2 && strings.Contains(parts[2], "e")
	if len(provider) < 15 || !strings.EqualFold(provider[:15], "CustomPresence:") {
		a.logf("WARNING func_presencestate.c: PRESENCE_STATE unknown")
		return "", false
	}
	state, subtype, message, ok := a.presenceFields(provider)
	if !ok {
		a.logf("WARNING func_presencestate.c: PRESENCE_STATE unknown")
		return "", false
	}
	switch strings.ToLower(field) {
	case "value":
		return state, true
	case "subtype":
		if encode {
			return base64Encode(subtype), true
		}
		return subtype, true
	case "message":
		if encode {
			return base64Encode(message), true
		}
		return message, true
	}
	return "", true
}

// presenceFields reads a CustomPresence provider's stored value, decoded;
// a.mu is held. A provider never set is not_set.
func (a *Asterisk) presenceFields(provider string) (state, subtype, message string, ok bool) {
	state = "not_set"
	if len(provider) < 15 || !strings.EqualFold(provider[:15], "CustomPresence:") {
		return "", "", "", false
	}
	raw, found := a.db["CustomPresence/"+provider[15:]]
	if !found {
		return state, "", "", true
	}
	st, sub, msg, opts, ok := parseData(raw)
	if !ok {
		return "", "", "", false
	}
	if strings.Contains(opts, "e") {
		sub, msg = base64DecodeLenient(sub), base64DecodeLenient(msg)
	}
	return st, sub, msg, true
}

// parseData mirrors parse_data in func_presencestate.c: strsep on ','.
func parseData(data string) (state, subtype, message, options string, ok bool) {
	f := strings.SplitN(data, ",", 5)
	if f[0] == "" {
		return "", "", "", "", false
	}
	for _, s := range presenceStates {
		if strings.EqualFold(s, f[0]) {
			state = s
		}
	}
	if state == "" {
		return "", "", "", "", false
	}
	get := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	subtype, message, options = get(1), get(2), get(3)
	if options != "" && !strings.Contains(options, "e") {
		return "", "", "", "", false
	}
	return state, subtype, message, options, true
}

// splitFunc splits "NAME(args)" into its parts.
func splitFunc(expr string) (name, args string, ok bool) {
	open := strings.IndexByte(expr, '(')
	if open <= 0 || !strings.HasSuffix(expr, ")") {
		return expr, "", false
	}
	return expr[:open], expr[open+1 : len(expr)-1], true
}
