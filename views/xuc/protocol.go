// Package xuc speaks the xuc Phone API (XiVO's CTI server, as its web
// clients use it) over presenced: a login with a token, then one
// WebSocket on which the client subscribes to phone hints and gets its
// own phone's status, calls, voicemail and forwards, and sets DND and
// forwards, dials and hangs up. Every message is a view of the change
// log (watch.Hub) and every command enters the same services as the
// hooks and the REST API.
//
// Messages, server to client, are {"msgType": ..., "ctiMessage": {...}}:
//
//	PhoneHintStatusEvent  {"number":"1005","status":0}
//	PhoneStatusUpdate     {"status":"AVAILABLE"}
//	UserConfigUpdate      {"userId":"alice","dndEnabled":false,"uncFwdEnabled":false,"uncFwdDestination":"",...}
//	VoiceMailStatusUpdate {"voiceMailId":"1001@default","newMessages":1,"waitingMessages":1,"oldMessages":0}
//	PhoneEvent            {"eventType":"EventRinging","DN":"1001","otherDN":"1002","otherDName":"Bob",...}
//	Pong                  {} (the answer to {"claz":"ping"})
//	Error                 {"Error":"...","code":"INVALID_ARGUMENT","command":"dial"}
package xuc

import (
	"strings"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/hints"
)

// The xuc phone hint statuses. They are Asterisk's extension states (the
// same numbers: xuc passes them on), read from the hint presenced keeps.
const (
	StatusAvailable      = 0   // Idle
	StatusCalling        = 1   // InUse
	StatusBusy           = 2   // Busy (DND on the phone's BLF device shows here)
	StatusIndisponible   = 4   // Unavailable (not registered)
	StatusRinging        = 8   // Ringing
	StatusBusyAndRinging = 9   // InUse&Ringing
	StatusOnHold         = 16  // OnHold, and InUse&Hold (a call held beside one in use)
	StatusDeactivated    = -1  // the hint's extension is gone from the dialplan
	StatusUnexisting     = -2  // no such hint (an unknown number), or a hint removed
	StatusError          = -99 // a state Asterisk does not make
)

// Status maps a hint's extension state to xuc's status; exists is false
// for a number with no hint.
func Status(st hints.ExtensionState, exists bool) int {
	if !exists {
		return StatusUnexisting
	}
	switch st {
	case hints.ExtIdle:
		return StatusAvailable
	case hints.ExtInUse:
		return StatusCalling
	case hints.ExtBusy:
		return StatusBusy
	case hints.ExtUnavailable:
		return StatusIndisponible
	case hints.ExtRinging:
		return StatusRinging
	case hints.ExtInUse | hints.ExtRinging:
		return StatusBusyAndRinging
	case hints.ExtOnHold, hints.ExtInUse | hints.ExtOnHold:
		return StatusOnHold
	case hints.ExtDeactivated:
		return StatusDeactivated
	case hints.ExtRemoved:
		return StatusUnexisting
	}
	return StatusError
}

// StatusName is the status's name, as PhoneStatusUpdate gives it.
func StatusName(status int) string {
	switch status {
	case StatusAvailable:
		return "AVAILABLE"
	case StatusCalling:
		return "CALLING"
	case StatusBusy:
		return "BUSY"
	case StatusIndisponible:
		return "INDISPONIBLE"
	case StatusRinging:
		return "RINGING"
	case StatusBusyAndRinging:
		return "BUSY_AND_RINGING"
	case StatusOnHold:
		return "ONHOLD"
	case StatusDeactivated:
		return "DEACTIVATED"
	case StatusUnexisting:
		return "UNEXISTING"
	}
	return "ERROR"
}

// Out is one message to the client.
type Out struct {
	MsgType    string `json:"msgType"`
	CtiMessage any    `json:"ctiMessage"`
}

// HintStatus is a PhoneHintStatusEvent's message.
type HintStatus struct {
	Number string `json:"number"`
	Status int    `json:"status"`
}

// PhoneStatus is a PhoneStatusUpdate's message.
type PhoneStatus struct {
	Status string `json:"status"`
}

// UserConfig is a UserConfigUpdate's message: DND and the forwards.
type UserConfig struct {
	UserID             string `json:"userId"`
	DNDEnabled         bool   `json:"dndEnabled"`
	UncFwdEnabled      bool   `json:"uncFwdEnabled"`
	UncFwdDestination  string `json:"uncFwdDestination"`
	BusyFwdEnabled     bool   `json:"busyFwdEnabled"`
	BusyFwdDestination string `json:"busyFwdDestination"`
	NaFwdEnabled       bool   `json:"naFwdEnabled"`
	NaFwdDestination   string `json:"naFwdDestination"`
	LineNumber         string `json:"lineNumber"`
	VoiceMailID        string `json:"voiceMailId"`
}

// VoiceMail is a VoiceMailStatusUpdate's message. waitingMessages is 1
// while new messages wait (the phone's lamp), else 0.
type VoiceMail struct {
	VoiceMailID     string `json:"voiceMailId"`
	NewMessages     int    `json:"newMessages"`
	WaitingMessages int    `json:"waitingMessages"`
	OldMessages     int    `json:"oldMessages"`
}

// PhoneEvent is a PhoneEvent's message: one change of one of the user's
// calls.
type PhoneEvent struct {
	EventType     string            `json:"eventType"`
	DN            string            `json:"DN"`
	OtherDN       string            `json:"otherDN"`
	OtherDName    string            `json:"otherDName"`
	LinkedID      string            `json:"linkedId"`
	UniqueID      string            `json:"uniqueId"`
	CallDirection string            `json:"callDirection"`
	UserData      map[string]string `json:"userData"`
	Username      string            `json:"username"`
}

// ErrorMessage is an Error's message.
type ErrorMessage struct {
	Error   string `json:"Error"`
	Code    string `json:"code"`
	Command string `json:"command,omitempty"`
}

// The phone event types.
const (
	EventDialing     = "EventDialing"
	EventRinging     = "EventRinging"
	EventEstablished = "EventEstablished"
	EventOnHold      = "EventOnHold"
	EventReleased    = "EventReleased"
)

// eventType is the phone event a call in its state makes: a call the
// user made is dialing until answered (the far end ringing included); a
// call to the user rings.
func eventType(c calls.Call) string {
	switch c.State {
	case calls.Established:
		return EventEstablished
	case calls.Held:
		return EventOnHold
	case calls.Dialing, calls.Ringing:
		if c.Direction == calls.Outgoing {
			return EventDialing
		}
		return EventRinging
	}
	return ""
}

func direction(d calls.Direction) string {
	switch d {
	case calls.Incoming:
		return "Incoming"
	case calls.Outgoing:
		return "Outgoing"
	}
	return "DirectionUnknown"
}

// CallEvents returns the phone events from one device's calls before and
// after a change, by unique id: a call new or in another state makes its
// state's event, a call gone makes EventReleased. dn and username name
// the user.
func CallEvents(before, after []calls.Call, dn, username string) []PhoneEvent {
	var out []PhoneEvent
	was := map[string]calls.Call{}
	for _, c := range before {
		was[c.UniqueID] = c
	}
	now := map[string]bool{}
	for _, c := range after {
		now[c.UniqueID] = true
		old, ok := was[c.UniqueID]
		typ := eventType(c)
		if typ == "" || (ok && eventType(old) == typ && old.Number == c.Number) {
			continue
		}
		out = append(out, phoneEvent(typ, c, dn, username))
	}
	for _, c := range before {
		if !now[c.UniqueID] {
			out = append(out, phoneEvent(EventReleased, c, dn, username))
		}
	}
	return out
}

func phoneEvent(typ string, c calls.Call, dn, username string) PhoneEvent {
	data := map[string]string{}
	for k, v := range c.Vars {
		if strings.HasPrefix(k, "USR_") {
			data[k] = v
		}
	}
	return PhoneEvent{EventType: typ, DN: dn, OtherDN: c.Number, OtherDName: c.Name, LinkedID: c.LinkedID, UniqueID: c.UniqueID,
		CallDirection: direction(c.Direction), UserData: data, Username: username}
}
