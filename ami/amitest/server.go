// Package amitest is a fake Asterisk manager interface for tests, speaking
// the frames Asterisk 22 sends (BEHAVIOUR.md 4.2, 4.8 and Asterisk's
// res_manager_presencestate.c and extension_state.c): the banner, Login
// with FullyBooted after it, PresenceStateList, ExtensionStateList (an
// error when there are no hints), PresenceState with its duplicated
// Message key, and PresenceStateChange and PresenceStatus events. It can
// drop every connection, and change state while nobody is connected.
package amitest

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

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
	// Ast, when set, evaluates Setvar and Getvar of dialplan functions
	// (PRESENCE_STATE) as Asterisk does; a successful PRESENCE_STATE write
	// then sends the presence events.
	Ast *astemu.Asterisk

	mu       sync.Mutex
	user     string
	secret   string
	ln       net.Listener
	presence map[string]Presence // by provider, as written ("CustomPresence:1001")
	order    []string
	hints    []Hint
	conns    map[*session]struct{}
	actions  []string
	wg       sync.WaitGroup
}

type session struct {
	c      net.Conn
	wmu    sync.Mutex
	logged bool
}

// New starts a server that accepts user/secret.
func New(user, secret string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{user: user, secret: secret, ln: ln, presence: map[string]Presence{}, conns: map[*session]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
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
	_ = s.ln.Close()
	s.Drop()
	s.wg.Wait()
}

// Drop closes every client connection, as a network failure would.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
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

// SetHints sets the running dialplan's hints.
func (s *Server) SetHints(hs ...Hint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hints = slices.Clone(hs)
}

// SetPresence changes a provider's presence and sends the events Asterisk
// sends: PresenceStatus for each hint using it, then PresenceStateChange.
func (s *Server) SetPresence(provider string, p Presence) {
	s.setPresence(provider, p)
	s.mu.Lock()
	var frames []string
	for _, h := range s.hints {
		if strings.Contains(h.App, provider) {
			frames = append(frames, fmt.Sprintf("Event: PresenceStatus\r\nPrivilege: call,all\r\nExten: %s\r\nContext: %s\r\nHint: %s\r\nStatus: %s\r\nSubtype: %s\r\nMessage: %s\r\n\r\n",
				h.Exten, h.Context, h.App, p.State, p.Subtype, p.Message))
		}
	}
	frames = append(frames, fmt.Sprintf("Event: PresenceStateChange\r\nPrivilege: call,all\r\nPresentity: %s\r\nStatus: %s\r\nSubtype: %s\r\nMessage: %s\r\n\r\n",
		provider, p.State, p.Subtype, p.Message))
	s.mu.Unlock()
	for _, f := range frames {
		s.Broadcast(f)
	}
}

// SetPresenceQuietly changes a provider's presence without events, as a
// change made while a client was disconnected looks to that client.
func (s *Server) SetPresenceQuietly(provider string, p Presence) { s.setPresence(provider, p) }

func (s *Server) setPresence(provider string, p Presence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.presence[provider]; !ok {
		s.order = append(s.order, provider)
	}
	s.presence[provider] = p
}

// FullyBooted sends the event Asterisk sends when it has finished booting.
func (s *Server) FullyBooted() {
	s.Broadcast("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
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
		s.mu.Unlock()
		c.write("Response: Success\r\n"+aid+"Message: Authentication accepted\r\n\r\n",
			"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
		return true
	}
	s.mu.Lock()
	logged := c.logged
	s.mu.Unlock()
	if !logged {
		c.write("Response: Error\r\n" + aid + "Message: Permission denied\r\n\r\n")
		return true
	}
	switch action {
	case "presencestatelist":
		s.mu.Lock()
		frames := []string{"Response: Success\r\n" + aid + "EventList: start\r\nMessage: Presence State Changes will follow\r\n\r\n"}
		for _, prov := range s.order {
			p := s.presence[prov]
			frames = append(frames, fmt.Sprintf("Event: PresenceStateChange\r\n%sPresentity: %s\r\nStatus: %s\r\nSubtype: %s\r\nMessage: %s\r\n\r\n", aid, prov, p.State, p.Subtype, p.Message))
		}
		frames = append(frames, fmt.Sprintf("Event: PresenceStateListComplete\r\n%sEventList: Complete\r\nListItems: %d\r\n\r\n", aid, len(s.order)))
		s.mu.Unlock()
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
		s.mu.Lock()
		p, ok := s.presence[h["provider"]]
		s.mu.Unlock()
		if !ok {
			p = Presence{State: "not_set"}
		}
		// The duplicated Message key is Asterisk's (BEHAVIOUR.md 4.2).
		c.write(fmt.Sprintf("Response: Success\r\n%sMessage: Presence State\r\nState: %s\r\nSubtype: %s\r\nMessage: %s\r\nPresenceMessage: %s\r\n\r\n", aid, p.State, p.Subtype, p.Message, p.Message))
	case "setvar":
		name, value := h["variable"], h["value"]
		if s.Ast == nil || !strings.HasSuffix(name, ")") || !s.Ast.WriteFunction(name, value) {
			c.write("Response: Error\r\n" + aid + "Message: Variable not set\r\n\r\n")
			return true
		}
		c.write("Response: Success\r\n" + aid + "Message: Variable Set\r\n\r\n")
		if prov, ok := strings.CutPrefix(name, "PRESENCE_STATE("); ok {
			prov = strings.TrimSuffix(prov, ")")
			st, _ := s.Ast.ReadFunction("PRESENCE_STATE(" + prov + ",value)")
			sub, _ := s.Ast.ReadFunction("PRESENCE_STATE(" + prov + ",subtype)")
			msg, _ := s.Ast.ReadFunction("PRESENCE_STATE(" + prov + ",message)")
			s.SetPresence(prov, Presence{State: st, Subtype: sub, Message: msg})
		}
	case "getvar":
		v, ok := "", false
		if s.Ast != nil && strings.HasSuffix(h["variable"], ")") {
			v, ok = s.Ast.ReadFunction(h["variable"])
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
