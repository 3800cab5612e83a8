package amitest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DPMA, the Digium Phone Module's messaging between phone apps and AMI
// clients, as Digium's own example application shows it (Asterisk 11,
// DPMA 1.7): a client registers a method (Action: DPMAMessageRegister,
// Method); a phone app's pbx.request of that method reaches it as
//
//	Event: DPMAMessage
//	Privilege: agent,all
//	RequestID: aeprox152239181
//	Method: digium.confapp
//	Format: JSON
//	Parameters: {"action":"register","phonename":"ryan","cid":"601"}
//
// which it answers with Action: DPMAMessageResponse (RequestID, Response:
// the JSON, Format: JSON); Action: DPMAMessageSend (Method, Message,
// PhoneName) pushes a message to a phone. Registrations belong to the
// AMI session: a reconnect must register again.

// DPMASent is one DPMAMessageSend.
type DPMASent struct{ Method, Message, PhoneName string }

// dpmaAction answers the DPMA actions; false when action is none of them.
func (s *Server) dpmaAction(c *session, action, aid string, h map[string]string) bool {
	switch action {
	case "dpmamessageregister":
		if h["method"] == "" {
			c.write("Response: Error\r\n" + aid + "Message: Method not specified\r\n\r\n")
			return true
		}
		s.mu.Lock()
		if c.dpma == nil {
			c.dpma = map[string]bool{}
		}
		c.dpma[h["method"]] = true
		s.mu.Unlock()
		c.write("Response: Success\r\n" + aid + "Message: Method registered\r\n\r\n")
	case "dpmamessageresponse":
		s.mu.Lock()
		if s.dpmaResponses == nil {
			s.dpmaResponses = map[string]string{}
		}
		s.dpmaResponses[h["requestid"]] = h["response"]
		s.mu.Unlock()
		c.write("Response: Success\r\n" + aid + "Message: Response sent\r\n\r\n")
	case "dpmamessagesend":
		s.mu.Lock()
		s.dpmaSent = append(s.dpmaSent, DPMASent{Method: h["method"], Message: h["message"], PhoneName: h["phonename"]})
		s.mu.Unlock()
		c.write("Response: Success\r\n" + aid + "Message: Message sent\r\n\r\n")
	default:
		return false
	}
	return true
}

// DPMARegistered lists the methods registered by the clients logged in.
func (s *Server) DPMARegistered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for c := range s.conns {
		for m := range c.dpma {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// PhoneRequest is a phone app's pbx.request: a DPMAMessage to the clients
// that registered the method. It returns the request's id, "" when no
// client registered the method (DPMA then fails the request on the phone).
func (s *Server) PhoneRequest(method, params string) string {
	s.mu.Lock()
	s.dpmaNext++
	id := fmt.Sprintf("aeprox%d", 152239180+s.dpmaNext)
	var to []*session
	for c := range s.conns {
		if c.logged && c.dpma[method] {
			to = append(to, c)
		}
	}
	s.mu.Unlock()
	if len(to) == 0 {
		return ""
	}
	frame := "Event: DPMAMessage\r\nPrivilege: agent,all\r\nRequestID: " + id + "\r\nMethod: " + method + "\r\nFormat: JSON\r\nParameters: " +
		strings.NewReplacer("\r", "", "\n", "").Replace(params) + "\r\n\r\n"
	for _, c := range to {
		c.write(frame)
	}
	return id
}

// DPMAResponse waits up to wait for the response to a request.
func (s *Server) DPMAResponse(id string, wait time.Duration) (string, bool) {
	deadline := time.Now().Add(wait)
	for {
		s.mu.Lock()
		r, ok := s.dpmaResponses[id]
		s.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return r, ok
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// DPMASentTo returns the messages pushed to a phone.
func (s *Server) DPMASentTo(phone string) []DPMASent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DPMASent
	for _, m := range s.dpmaSent {
		if m.PhoneName == phone {
			out = append(out, m)
		}
	}
	return out
}
