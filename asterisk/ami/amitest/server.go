// Package amitest is a fake Asterisk manager interface for tests, speaking
// the frames Asterisk 22 sends (BEHAVIOUR.md 4.2, 4.8, 4.12 and Asterisk's
// res_manager_presencestate.c and extension_state.c): the banner, Login
// with FullyBooted after it, PresenceStateList, ExtensionStateList (an
// error when there are no hints), PresenceState with its duplicated
// Message key, and PresenceStateChange and PresenceStatus events. It can
// drop every connection, and change state while nobody is connected.
//
// Presence lives in an emulated Asterisk (package astemu), the one the
// fake AGI and ARI servers of a test may share: every accepted write,
// whatever its path (an AGI or Stasis channel, AMI Setvar, SetPresence
// standing for the CLI), is echoed as Asterisk echoes it: PresenceStatus
// per hint with the text raw (a line break as a bare LF inside the header),
// and PresenceStateChange with the text C-escaped; so is PresenceStateList.
// Events go out in write order, each after Delay, if set.
package amitest

import (
	"bufio"
	stdb64 "encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/internal/astemu"
)

// Presence is one provider's presence as Asterisk reports it (decoded).
type Presence struct{ State, Subtype, Message string }

// Hint is one hint of the running dialplan.
type Hint struct {
	Exten, Context, App string
	Status              int
	StatusText          string
}

// Server is a fake AMI server on loopback.
type Server struct {
	// Ast is the emulated Asterisk behind the fake (see Attach).
	Ast *astemu.Asterisk
	// Delay, when set, is how long each presence event waits before it is
	// sent (events keep their order): a real Asterisk echoes a write a few
	// milliseconds after answering it, sometimes later.
	Delay func() time.Duration

	mu      sync.Mutex
	user    string
	secret  string
	ln      net.Listener
	hints   []Hint
	conns   map[*session]struct{}
	actions []string
	wg      sync.WaitGroup
	unwatch func()
	// boot is where a booting Asterisk is (BEHAVIOUR.md 4.14): 0 booted,
	// 1 modules loading, 2 dialplan loaded.
	boot int

	// chans are the channels the fake has reported (Call), for
	// CoreShowChannels: what Asterisk would list now.
	chans map[string]*channel
	order []string
	// dialable: the "exten@context"s an Originate may dial besides the
	// hints' (SetDialable); originates: every Originate's fields.
	dialable map[string]bool
	// mailboxes: voicemail boxes\' counts ("box@context" -> new, old).
	mailboxes map[string][2]int
	// refused: actions the account may not run (Refuse).
	refused    map[string]bool
	originates []map[string]string
	nextChan   int
	// DPMA (dpma.go): responses by request id, messages pushed.
	dpmaResponses map[string]string
	dpmaSent      []DPMASent
	dpmaNext      int

	qmu   sync.Mutex
	queue [][]string // presence event frames waiting for the sender
	qwake chan struct{}
	quit  chan struct{}
}

type session struct {
	c      net.Conn
	wmu    sync.Mutex
	logged bool
	dpma   map[string]bool // DPMA methods this session registered
}

// New starts a server that accepts user/secret.
func New(user, secret string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{user: user, secret: secret, ln: ln, conns: map[*session]struct{}{},
		qwake: make(chan struct{}, 1), quit: make(chan struct{})}
	s.Attach(astemu.New())
	s.wg.Add(2)
	go s.accept()
	go s.send()
	return s, nil
}

// Attach puts ast behind the fake (instead of the one New made): its
// presence is what AMI lists and reads, and every presence write it takes
// is sent as events.
func (s *Server) Attach(ast *astemu.Asterisk) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unwatch != nil {
		s.unwatch()
	}
	s.Ast = ast
	s.unwatch = ast.Watch(s.echo)
}

func (s *Server) ast() *astemu.Asterisk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Ast
}

// echo queues the events Asterisk sends for a presence write:
// PresenceStatus for each hint using the provider (raw text), then
// PresenceStateChange (escaped text).
func (s *Server) echo(c astemu.PresenceChange) {
	s.mu.Lock()
	var frames []string
	for _, h := range s.hints {
		_, provs, _ := strings.Cut(h.App, ",")
		for _, p := range strings.Split(provs, "&") {
			if strings.EqualFold(p, c.Provider) {
				frames = append(frames, fmt.Sprintf("Event: PresenceStatus\r\nPrivilege: call,all\r\nExten: %s\r\nContext: %s\r\nHint: %s\r\nStatus: %s\r\nSubtype: %s\r\nMessage: %s\r\n\r\n",
					h.Exten, h.Context, h.App, c.State, c.Subtype, c.Message))
				break
			}
		}
	}
	s.mu.Unlock()
	frames = append(frames, fmt.Sprintf("Event: PresenceStateChange\r\nPrivilege: call,all\r\nPresentity: %s\r\nStatus: %s\r\nSubtype: %s\r\nMessage: %s\r\n\r\n",
		c.Provider, c.State, EscapeC(c.Subtype), EscapeC(c.Message)))
	s.qmu.Lock()
	s.queue = append(s.queue, frames)
	s.qmu.Unlock()
	select {
	case s.qwake <- struct{}{}:
	default:
	}
}

// send broadcasts queued presence events, in order, each after Delay.
func (s *Server) send() {
	defer s.wg.Done()
	for {
		s.qmu.Lock()
		var next []string
		if len(s.queue) > 0 {
			next = s.queue[0]
			s.queue = s.queue[1:]
		}
		s.qmu.Unlock()
		if next == nil {
			select {
			case <-s.qwake:
				continue
			case <-s.quit:
				return
			}
		}
		if s.Delay != nil {
			if d := s.Delay(); d > 0 {
				select {
				case <-time.After(d):
				case <-s.quit:
					return
				}
			}
		}
		for _, f := range next {
			s.Broadcast(f)
		}
	}
}

// Settle waits until every queued presence event has been sent.
func (s *Server) Settle() {
	for {
		s.qmu.Lock()
		n := len(s.queue)
		s.qmu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// EscapeC is ast_escape_c (main/utils.c) as Asterisk applies it to
// presence text on AMI: " ' ? \ and the C control escapes; everything else,
// UTF-8 included, as it is.
func EscapeC(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\v':
			b.WriteString(`\v`)
		case '\\', '\'', '"', '?':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SetSecret changes the password logins need, as an edit of manager.conf.
func (s *Server) SetSecret(secret string) {
	s.mu.Lock()
	s.secret = secret
	s.mu.Unlock()
}

// Addr is the listen address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	_ = s.ln.Close()
	s.Drop()
	s.wg.Wait()
}

// Drop closes every client connection, as a network failure would.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// Gone at once: its login and its DPMA registrations with it.
		c.logged, c.dpma = false, nil
		_ = c.c.Close()
	}
}

// Connections returns the number of logged-in clients.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.logged {
			n++
		}
	}
	return n
}

// Actions returns the actions received so far.
func (s *Server) Actions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.actions)
}

// Reload is `dialplan reload` with hs as the new hints, as Asterisk 22
// does it (BEHAVIOUR.md 4.13): one unsolicited ExtensionStatus per hint
// that exists after the reload, in order, whose Hint is the text before
// the reload (empty for a new hint) and whose Status is the one given
// (computed from the new devices); nothing for a removed hint; no Reload
// event. A hint whose devices changed keeps its stored state (what
// ExtensionStateList says) until SetHintStatus, as Asterisk keeps it until
// one of its devices changes.
func (s *Server) Reload(hs ...Hint) {
	s.mu.Lock()
	old := map[string]Hint{}
	for _, h := range s.hints {
		old[h.Exten+"@"+h.Context] = h
	}
	frames := make([]string, 0, len(hs))
	stored := make([]Hint, 0, len(hs))
	for _, h := range hs {
		o, existed := old[h.Exten+"@"+h.Context]
		before := ""
		if existed {
			before = o.App
		}
		frames = append(frames, fmt.Sprintf("Event: ExtensionStatus\r\nPrivilege: call,all\r\nExten: %s\r\nContext: %s\r\nHint: %s\r\nStatus: %d\r\nStatusText: %s\r\n\r\n",
			h.Exten, h.Context, before, h.Status, h.StatusText))
		if existed && o.App != h.App {
			h.Status, h.StatusText = o.Status, o.StatusText
		}
		stored = append(stored, h)
	}
	s.hints = stored
	s.mu.Unlock()
	for _, f := range frames {
		s.Broadcast(f)
	}
}

// SetHintStatus changes a hint's stored state and sends its
// ExtensionStatus, as a change of one of its devices does.
func (s *Server) SetHintStatus(exten, context string, status int, text string) {
	s.mu.Lock()
	var frame string
	for i, h := range s.hints {
		if h.Exten == exten && h.Context == context {
			s.hints[i].Status, s.hints[i].StatusText = status, text
			frame = fmt.Sprintf("Event: ExtensionStatus\r\nPrivilege: call,all\r\nExten: %s\r\nContext: %s\r\nHint: %s\r\nStatus: %d\r\nStatusText: %s\r\n\r\n",
				h.Exten, h.Context, h.App, status, text)
		}
	}
	s.mu.Unlock()
	if frame != "" {
		s.Broadcast(frame)
	}
}

// SetHints sets the running dialplan's hints.
func (s *Server) SetHints(hs ...Hint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hints = slices.Clone(hs)
}

// SetPresence changes a provider's presence as the CLI or another
// dialplan would, outside presenced; Asterisk then sends its events.
func (s *Server) SetPresence(provider string, p Presence) {
	s.ast().SetPresence(provider, p.State, p.Subtype, p.Message)
}

// SetPresenceQuietly changes a provider's presence without events, as a
// change made while a client was disconnected looks to that client.
func (s *Server) SetPresenceQuietly(provider string, p Presence) {
	name := provider[strings.IndexByte(provider, ':')+1:]
	s.ast().DBPut("CustomPresence", name, p.State+","+stdb64.StdEncoding.EncodeToString([]byte(p.Subtype))+","+stdb64.StdEncoding.EncodeToString([]byte(p.Message))+",e")
}

// FullyBooted sends the event Asterisk sends when it has finished booting.
func (s *Server) FullyBooted() {
	s.Broadcast("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\nUptime: 1\r\nLastReload: 1\r\n\r\n")
}

// Restart is Asterisk restarting, up to the moment its manager accepts
// logins (BEHAVIOUR.md 4.14): every connection is dropped; logins then
// succeed without FullyBooted, ExtensionStateList answers an empty list
// and PresenceStateList is an unknown command, until LoadDialplan and
// Booted.
func (s *Server) Restart() {
	s.mu.Lock()
	s.boot = 1
	s.chans, s.order = nil, nil // a restart ends every call
	s.mu.Unlock()
	s.Drop()
}

// LoadDialplan is pbx_config loading the dialplan while Asterisk boots:
// an ExtensionStatus per hint with an empty Hint, and ExtensionStateList
// lists them from now on.
func (s *Server) LoadDialplan() {
	s.mu.Lock()
	s.boot = 2
	var frames []string
	for _, h := range s.hints {
		frames = append(frames, fmt.Sprintf("Event: ExtensionStatus\r\nPrivilege: call,all\r\nExten: %s\r\nContext: %s\r\nHint: \r\nStatus: %d\r\nStatusText: %s\r\n\r\n",
			h.Exten, h.Context, h.Status, h.StatusText))
	}
	s.mu.Unlock()
	for _, f := range frames {
		s.Broadcast(f)
	}
}

// Booted ends the boot: every command works, and the clients logged in
// during it get the one FullyBooted they will see (Status first).
func (s *Server) Booted() {
	s.mu.Lock()
	s.boot = 0
	s.mu.Unlock()
	s.FullyBooted()
}

// channel is a channel as CoreShowChannel lists it.
type channel struct {
	fields  map[string]string
	created time.Time
}

// showFields are CoreShowChannel's fields, in Asterisk 22's order
// (BEHAVIOUR.md 4.15).
var showFields = []string{"Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
	"ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid", "Linkedid", "Application",
	"ApplicationData"}

// Call sends channel event frames (as a real Asterisk sends them, e.g.
// from a recording) to every logged-in client, and keeps the channels
// they describe, which CoreShowChannels then lists: Newchannel adds one,
// Newstate, NewConnectedLine, NewCallerid and Newexten change it, Rename
// renames it, Hangup removes it.
func (s *Server) Call(frames ...string) {
	s.applyCalls(frames)
	for _, f := range frames {
		s.Broadcast(f)
	}
}

// CallQuietly changes the channels as Call does without sending
// anything: what happened while presenced was not connected.
func (s *Server) CallQuietly(frames ...string) { s.applyCalls(frames) }

func (s *Server) applyCalls(frames []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chans == nil {
		s.chans = map[string]*channel{}
	}
	for _, f := range frames {
		m := map[string]string{}
		for _, l := range strings.Split(f, "\r\n") {
			if k, v, ok := strings.Cut(l, ": "); ok {
				m[k] = v
			}
		}
		name := m["Channel"]
		ch := s.chans[name]
		switch m["Event"] {
		case "Newchannel":
			ch = &channel{fields: map[string]string{"Language": "en"}, created: time.Now()}
			s.chans[name] = ch
			s.order = append(s.order, name)
			fallthrough
		case "Newstate", "NewConnectedLine", "NewCallerid":
			if ch == nil {
				continue
			}
			for _, k := range showFields {
				if v, ok := m[k]; ok && k != "Application" && k != "ApplicationData" {
					ch.fields[k] = v
				}
			}
		case "Newexten":
			if ch != nil {
				ch.fields["Application"], ch.fields["ApplicationData"] = m["Application"], m["AppData"]
				if x, ok := m["Exten"]; ok {
					ch.fields["Exten"] = x
				}
			}
		case "Rename":
			if ch != nil {
				delete(s.chans, name)
				ch.fields["Channel"] = m["Newname"]
				s.chans[m["Newname"]] = ch
				s.order = append(s.order, m["Newname"])
			}
		case "Hangup":
			delete(s.chans, name)
		}
	}
	// The order of creation, without the channels gone.
	kept := s.order[:0]
	seen := map[string]bool{}
	for _, n := range s.order {
		if s.chans[n] != nil && !seen[n] {
			kept = append(kept, n)
			seen[n] = true
		}
	}
	s.order = kept
}

// Channels returns the names of the channels the fake holds now.
func (s *Server) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// coreShowChannels answers CoreShowChannels as Asterisk 22 does.
func (s *Server) coreShowChannels(aid string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames := []string{"Response: Success\r\n" + aid + "EventList: start\r\nMessage: Channels will follow\r\n\r\n"}
	for _, n := range s.order {
		ch := s.chans[n]
		var b strings.Builder
		b.WriteString("Event: CoreShowChannel\r\n" + aid)
		for _, k := range showFields {
			b.WriteString(k + ": " + ch.fields[k] + "\r\n")
		}
		d := time.Since(ch.created)
		fmt.Fprintf(&b, "Duration: %02d:%02d:%02d\r\nBridgeId: \r\n\r\n", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
		frames = append(frames, b.String())
	}
	return append(frames, fmt.Sprintf("Event: CoreShowChannelsComplete\r\n%sEventList: Complete\r\nListItems: %d\r\n\r\n", aid, len(s.order)))
}

// Refuse makes the fake answer an action "Permission denied", as
// Asterisk does for an account whose classes do not allow it.
func (s *Server) Refuse(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = map[string]bool{}
	}
	s.refused[strings.ToLower(action)] = true
}

// SetMailbox sets a voicemail box's counts ("box@context") and, when they
// changed, sends one MessageWaiting, as app_voicemail does when it finds
// a change (BEHAVIOUR.md 4.20: none for an unchanged refresh).
func (s *Server) SetMailbox(box string, newMsgs, oldMsgs int) {
	if s.setMailbox(box, newMsgs, oldMsgs) {
		waiting := 0
		if newMsgs > 0 {
			waiting = 1
		}
		s.Broadcast(fmt.Sprintf("Event: MessageWaiting\r\nPrivilege: call,all\r\nMailbox: %s\r\nWaiting: %d\r\nNew: %d\r\nOld: %d\r\n\r\n", box, waiting, newMsgs, oldMsgs))
	}
}

// SetMailboxQuietly changes a box's counts without an event: what
// changed while presenced was not connected.
func (s *Server) SetMailboxQuietly(box string, newMsgs, oldMsgs int) {
	s.setMailbox(box, newMsgs, oldMsgs)
}

func (s *Server) setMailbox(box string, newMsgs, oldMsgs int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mailboxes == nil {
		s.mailboxes = map[string][2]int{}
	}
	old, had := s.mailboxes[box]
	s.mailboxes[box] = [2]int{newMsgs, oldMsgs}
	return !had || old != [2]int{newMsgs, oldMsgs}
}

// voicemailUsers answers VoicemailUsersList (the fields presenced reads,
// in Asterisk 22's order, of the 30 it sends).
func (s *Server) voicemailUsers(aid string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	boxes := make([]string, 0, len(s.mailboxes))
	for b := range s.mailboxes {
		boxes = append(boxes, b)
	}
	slices.Sort(boxes)
	frames := []string{"Response: Success\r\n" + aid + "EventList: start\r\nMessage: Voicemail user list will follow\r\n\r\n"}
	for _, b := range boxes {
		box, ctx, _ := strings.Cut(b, "@")
		c := s.mailboxes[b]
		frames = append(frames, fmt.Sprintf("Event: VoicemailUserEntry\r\n%sVMContext: %s\r\nVoiceMailbox: %s\r\nFullname: User %s\r\nEmail: (null)\r\nNewMessageCount: %d\r\nOldMessageCount: %d\r\n\r\n",
			aid, ctx, box, box, c[0], c[1]))
	}
	return append(frames, fmt.Sprintf("Event: VoicemailUserEntryComplete\r\n%sEventList: Complete\r\nListItems: %d\r\n\r\n", aid, len(boxes)))
}

// SetDialable makes extensions of a context exist in the fake's
// dialplan, for Originate (hints' extensions exist already).
func (s *Server) SetDialable(context string, extens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dialable == nil {
		s.dialable = map[string]bool{}
	}
	for _, x := range extens {
		s.dialable[x+"@"+context] = true
	}
}

// Originates returns the fields of every Originate received, lower-case
// names.
func (s *Server) Originates() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.originates)
}

// originate answers an Originate as Asterisk 22 does (BEHAVIOUR.md 4.17):
// the channel and the extension are checked first; an asynchronous one is
// queued, and its device, when a hint names it (a phone that is there),
// gets a channel that rings (Newchannel Down with Exten s, Newstate
// Ringing); a device no hint names fails with OriginateResponse Reason 0.
// The fake's phones never answer. A synchronous Originate, which holds
// the session's events until the phone answers, is refused as "Originate
// failed", what Asterisk answers when the phone is not there.
func (s *Server) originate(c *session, aid string, h map[string]string) {
	ch, ctx, exten := h["channel"], h["context"], h["exten"]
	s.mu.Lock()
	s.originates = append(s.originates, h)
	exists := s.dialable[exten+"@"+ctx]
	known := false
	for _, hint := range s.hints {
		exists = exists || (hint.Exten == exten && hint.Context == ctx)
		for _, d := range strings.Split(strings.SplitN(hint.App, ",", 2)[0], "&") {
			known = known || strings.EqualFold(d, ch)
		}
	}
	s.nextChan++
	n := s.nextChan
	s.mu.Unlock()
	fail := func(msg string) { c.write("Response: Error\r\n" + aid + "Message: " + msg + "\r\n\r\n") }
	switch {
	case ch == "":
		fail("Channel not specified")
		return
	case !strings.Contains(ch, "/") || strings.HasSuffix(ch, "/"):
		fail("Invalid channel")
		return
	case !exists:
		fail("Extension does not exist.")
		return
	case !strings.EqualFold(h["async"], "true"):
		fail("Originate failed")
		return
	}
	c.write("Response: Success\r\n" + aid + "Message: Originate successfully queued\r\n\r\n")
	if !known {
		c.write(fmt.Sprintf("Event: OriginateResponse\r\nPrivilege: call,all\r\n%sResponse: Failure\r\nChannel: %s\r\nContext: %s\r\nExten: %s\r\nReason: 0\r\nUniqueid: <unknown>\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n", aid, ch, ctx, exten))
		return
	}
	name := fmt.Sprintf("%s-%08x", ch, 0x100+n)
	uid := fmt.Sprintf("1795966106.%d", 100+n)
	_, res, _ := strings.Cut(ch, "/")
	state := func(event, st, desc string) string {
		return fmt.Sprintf("Event: %s\r\nPrivilege: call,all\r\nChannel: %s\r\nChannelState: %s\r\nChannelStateDesc: %s\r\nCallerIDNum: %s\r\nCallerIDName: \r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: %s\r\nExten: s\r\nPriority: 1\r\nUniqueid: %s\r\nLinkedid: %s\r\n\r\n",
			event, name, st, desc, res, ctx, uid, uid)
	}
	go s.Call(state("Newchannel", "0", "Down"), state("Newstate", "5", "Ringing"))
}

// hangup answers a Hangup action: a channel the fake holds ends (cause
// 16), any other is "No such channel" (Asterisk's manager.c).
func (s *Server) hangup(c *session, aid, ch string) {
	s.mu.Lock()
	cur := s.chans[ch]
	var uid string
	if cur != nil {
		uid = cur.fields["Uniqueid"]
	}
	s.mu.Unlock()
	if cur == nil {
		c.write("Response: Error\r\n" + aid + "Message: No such channel\r\n\r\n")
		return
	}
	c.write("Response: Success\r\n" + aid + "Message: Channel Hungup\r\n\r\n")
	s.Call(fmt.Sprintf("Event: Hangup\r\nPrivilege: call,all\r\nChannel: %s\r\nUniqueid: %s\r\nLinkedid: %s\r\nCause: 16\r\nCause-txt: Normal Clearing\r\n\r\n", ch, uid, uid))
}

// Broadcast sends a raw frame to every logged-in client.
func (s *Server) Broadcast(frame string) {
	s.mu.Lock()
	var to []*session
	for c := range s.conns {
		if c.logged {
			to = append(to, c)
		}
	}
	s.mu.Unlock()
	for _, c := range to {
		c.write(frame)
	}
}

func (c *session) write(frames ...string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = c.c.Write([]byte(strings.Join(frames, "")))
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &session{c: nc}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c *session) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.c.Close()
	}()
	c.write("Asterisk Call Manager/11.0.0\r\n")
	br := bufio.NewReader(c.c)
	for {
		hdr := map[string]string{}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			k, v, _ := strings.Cut(line, ":")
			hdr[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		if len(hdr) == 0 {
			continue
		}
		if !s.handle(c, hdr) {
			return
		}
	}
}

// handle answers one action; false ends the session.
func (s *Server) handle(c *session, h map[string]string) bool {
	id := h["actionid"]
	aid := ""
	if id != "" {
		aid = "ActionID: " + id + "\r\n"
	}
	action := strings.ToLower(h["action"])
	s.mu.Lock()
	s.actions = append(s.actions, h["action"])
	user, secret := s.user, s.secret
	s.mu.Unlock()
	if action == "login" {
		if h["username"] != user || h["secret"] != secret {
			c.write("Response: Error\r\n" + aid + "Message: Authentication failed\r\n\r\n")
			return false
		}
		s.mu.Lock()
		c.logged = true
		boot := s.boot
		s.mu.Unlock()
		if boot != 0 {
			c.write("Response: Success\r\n" + aid + "Message: Authentication accepted\r\n\r\n")
			return true
		}
		// After boot a login is greeted with FullyBooted, Status last.
		c.write("Response: Success\r\n"+aid+"Message: Authentication accepted\r\n\r\n",
			"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 10\r\nLastReload: 10\r\nStatus: Fully Booted\r\n\r\n")
		return true
	}
	s.mu.Lock()
	logged := c.logged
	s.mu.Unlock()
	if !logged {
		c.write("Response: Error\r\n" + aid + "Message: Permission denied\r\n\r\n")
		return true
	}
	s.mu.Lock()
	boot := s.boot
	s.mu.Unlock()
	if boot != 0 && (action == "presencestatelist" || action == "devicestatelist") {
		c.write("Response: Error\r\n"+aid+"Message: Invalid/unknown command: "+h["action"]+". Use Action: ListCommands to show available commands.\r\n\r\n",
			"Event: RequestBadFormat\r\nPrivilege: security,all\r\nSeverity: Error\r\nService: AMI\r\nEventVersion: 1\r\nRequestType: Action: "+h["action"]+"\r\nAccountID: "+user+"\r\n\r\n")
		return true
	}
	if boot == 1 && action == "extensionstatelist" {
		c.write("Response: Success\r\n"+aid+"EventList: start\r\nMessage: Extension Statuses will follow\r\n\r\n",
			"Event: ExtensionStateListComplete\r\n"+aid+"EventList: Complete\r\nListItems: 0\r\n\r\n")
		return true
	}
	s.mu.Lock()
	refused := s.refused[action]
	s.mu.Unlock()
	if refused {
		c.write("Response: Error\r\n" + aid + "Message: Permission denied\r\n\r\n")
		return true
	}
	if s.dpmaAction(c, action, aid, h) {
		return true
	}
	switch action {
	case "coreshowchannels":
		c.write(s.coreShowChannels(aid)...)
	case "voicemailuserslist":
		c.write(s.voicemailUsers(aid)...)
	case "originate":
		s.originate(c, aid, h)
	case "hangup":
		s.hangup(c, aid, h["channel"])
	case "presencestatelist":
		frames := []string{"Response: Success\r\n" + aid + "EventList: start\r\nMessage: Presence State Changes will follow\r\n\r\n"}
		provs := s.ast().Providers()
		n := 0
		for _, prov := range provs {
			st, sub, msg, ok := s.ast().Presence(prov)
			if !ok {
				continue
			}
			n++
			frames = append(frames, fmt.Sprintf("Event: PresenceStateChange\r\n%sPresentity: %s\r\nStatus: %s\r\nSubtype: %s\r\nMessage: %s\r\n\r\n", aid, prov, st, EscapeC(sub), EscapeC(msg)))
		}
		frames = append(frames, fmt.Sprintf("Event: PresenceStateListComplete\r\n%sEventList: Complete\r\nListItems: %d\r\n\r\n", aid, n))
		c.write(frames...)
	case "extensionstatelist":
		s.mu.Lock()
		if len(s.hints) == 0 {
			s.mu.Unlock()
			c.write("Response: Error\r\n" + aid + "Message: No dialplan hints are available\r\n\r\n")
			return true
		}
		frames := []string{"Response: Success\r\n" + aid + "EventList: start\r\nMessage: Extension Statuses will follow\r\n\r\n"}
		for _, hn := range s.hints {
			frames = append(frames, fmt.Sprintf("Event: ExtensionStatus\r\n%sExten: %s\r\nContext: %s\r\nHint: %s\r\nStatus: %d\r\nStatusText: %s\r\n\r\n", aid, hn.Exten, hn.Context, hn.App, hn.Status, hn.StatusText))
		}
		frames = append(frames, fmt.Sprintf("Event: ExtensionStateListComplete\r\n%sEventList: Complete\r\nListItems: %d\r\n\r\n", aid, len(s.hints)))
		s.mu.Unlock()
		c.write(frames...)
	case "presencestate":
		var p Presence
		var ok bool
		p.State, p.Subtype, p.Message, ok = s.ast().Presence(h["provider"])
		if !ok {
			c.write("Response: Error\r\n" + aid + "Message: Unable to get presence state\r\n\r\n")
			return true
		}
		// The duplicated Message key is Asterisk's (BEHAVIOUR.md 4.2).
		c.write(fmt.Sprintf("Response: Success\r\n%sMessage: Presence State\r\nState: %s\r\nSubtype: %s\r\nMessage: %s\r\nPresenceMessage: %s\r\n\r\n", aid, p.State, p.Subtype, p.Message, p.Message))
	case "setvar":
		name, value := h["variable"], h["value"]
		if !strings.HasSuffix(name, ")") || !s.ast().WriteFunction(name, value) {
			c.write("Response: Error\r\n" + aid + "Message: Variable not set\r\n\r\n")
			return true
		}
		c.write("Response: Success\r\n" + aid + "Message: Variable Set\r\n\r\n")
	case "getvar":
		v, ok := "", false
		if strings.HasSuffix(h["variable"], ")") {
			v, ok = s.ast().ReadFunction(h["variable"])
		}
		if !ok {
			c.write("Response: Error\r\n" + aid + "Message: Failed to get variable\r\n\r\n")
			return true
		}
		c.write(fmt.Sprintf("Response: Success\r\n%sVariable: %s\r\nValue: %s\r\n\r\n", aid, h["variable"], v))
	case "logoff":
		c.write("Response: Goodbye\r\n" + aid + "Message: Thanks for all the fish.\r\n\r\n")
		return false
	default:
		c.write("Response: Error\r\n" + aid + "Message: Invalid/unknown command\r\n\r\n")
	}
	return true
}
