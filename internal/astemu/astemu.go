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
	"strings"
	"sync"
)

var presenceStates = []string{"not_set", "unavailable", "available", "away", "xa", "chat", "dnd"}

// Asterisk holds the shared state of one emulated Asterisk.
type Asterisk struct {
	mu  sync.Mutex
	db  map[string]string // "family/key" -> value
	log []string

	// RejectPresence makes every PRESENCE_STATE() write fail as Asterisk
	// fails a value it does not accept: a log line, the old value kept, and
	// still a success reply on the wire.
	RejectPresence bool
	// NoPresenceFunc emulates func_presencestate not being loaded: writes are
	// ignored and reads fail (GET VARIABLE answers result=0).
	NoPresenceFunc bool
}

// New returns an empty Asterisk.
func New() *Asterisk { return &Asterisk{db: map[string]string{}} }

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
	fn, args, ok := splitFunc(name)
	if !ok || !strings.EqualFold(fn, "PRESENCE_STATE") || a.NoPresenceFunc {
		a.mu.Lock()
		a.logf("ERROR pbx_functions.c: Function " + fn + " not registered")
		a.mu.Unlock()
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(args) < 15 || !strings.EqualFold(args[:15], "CustomPresence:") {
		a.logf("WARNING func_presencestate.c: The PRESENCE_STATE function can only set CustomPresence: presence providers.")
		return false
	}
	if len(args) == 15 {
		a.logf("WARNING func_presencestate.c: PRESENCE_STATE function called with no custom device name!")
		return false
	}
	if _, _, _, _, ok := parseData(value); !ok {
		a.logf("WARNING func_presencestate.c: Invalid arguments to PRESENCE_STATE")
		return false
	}
	if a.RejectPresence {
		a.logf("WARNING func_presencestate.c: Invalid arguments to PRESENCE_STATE (forced by the test)")
		return false
	}
	a.db["CustomPresence/"+args[15:]] = value
	return true
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
	state, subtype, message := "not_set", "", ""
	if raw, ok := a.db["CustomPresence/"+provider[15:]]; ok {
		st, sub, msg, opts, ok := parseData(raw)
		if !ok {
			a.logf("WARNING func_presencestate.c: PRESENCE_STATE unknown")
			return "", false
		}
		state, subtype, message = st, sub, msg
		if strings.Contains(opts, "e") {
			subtype, message = base64DecodeLenient(subtype), base64DecodeLenient(message)
		}
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
