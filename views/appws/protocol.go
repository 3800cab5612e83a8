// Package appws serves Innovaphone-style app services over presenced: a
// WebSocket on which an app logs in with the AppWebsocket challenge and
// digest, then subscribes to users' presence and sets it with messages
// in the PbxApi shape. Every message is a JSON object with "mt" (its
// type); a request's "src" (and "api") come back on its answers.
//
//	{"mt":"AppChallenge"}                                  -> {"mt":"AppChallengeResult","challenge":"<16 hex digits>"}
//	{"mt":"AppLogin","app","domain","sip","guid","dn","digest","info"} -> {"mt":"AppLoginResult","ok":true}
//	{"api":"PbxApi","mt":"SubscribePresence","sip":"1001","src":"a"}  -> SubscribePresenceResult, PresenceState, then PresenceUpdate per change
//	{"api":"PbxApi","mt":"SetPresence","sip":"1001","activity":"away","note":"Lunch","src":"b"} -> {"mt":"SetPresenceResult","src":"b"} (or with error, errorText)
//
// The digest is the lowercase hex SHA-256 of
// app:domain:sip:guid:dn:info:challenge:password, without ":info" when the
// login has none, info being the compact JSON the app sent.
package appws

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// In is a message from an app: the members of every message type
// presenced reads (others are ignored, as apps send more).
type In struct {
	MT       string          `json:"mt"`
	API      string          `json:"api,omitempty"`
	Src      json.RawMessage `json:"src,omitempty"`
	App      string          `json:"app"`
	Domain   string          `json:"domain"`
	SIP      string          `json:"sip"`
	GUID     string          `json:"guid"`
	DN       string          `json:"dn"`
	Digest   string          `json:"digest"`
	Info     json.RawMessage `json:"info,omitempty"`
	Num      string          `json:"num"`
	Activity *string         `json:"activity"`
	Note     string          `json:"note"`
}

// maxMessage bounds one message.
const maxMessage = 16 << 10

// Decode reads one message: a JSON object with a string "mt". A src, when
// given, must be a JSON string or number (it is sent back as is).
func Decode(data []byte) (In, error) {
	var m In
	if len(data) > maxMessage {
		return In{}, fmt.Errorf("a message of %d bytes (at most %d)", len(data), maxMessage)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return In{}, fmt.Errorf("not a JSON object with the members of a message: %s", clip.Clip(err.Error()))
	}
	if m.MT == "" {
		return In{}, errors.New(`the message has no "mt"`)
	}
	if len(m.Src) > 0 {
		var s any
		if err := json.Unmarshal(m.Src, &s); err != nil {
			return In{}, errors.New(`"src" is not JSON`)
		}
		switch s.(type) {
		case string, float64:
		default:
			return In{}, errors.New(`"src" is a string or a number`)
		}
	}
	return m, nil
}

// Digest computes a login's digest.
func Digest(app, domain, sip, guid, dn string, info json.RawMessage, challenge, password string) string {
	parts := []string{app, domain, sip, guid, dn}
	if inf := compactInfo(info); inf != "" {
		parts = append(parts, inf)
	}
	parts = append(parts, challenge, password)
	sum := sha256.Sum256([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(sum[:])
}

// compactInfo is info as compact JSON; "" for none (absent or null).
func compactInfo(info json.RawMessage) string {
	if len(info) == 0 || string(bytes.TrimSpace(info)) == "null" {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, info) != nil {
		return string(info)
	}
	return b.String()
}

// Activities. Innovaphone's presence is a status (open or closed) and an
// activity; presenced's is a state with a subtype. The table, both ways:
//
//	activity   presenced
//	""         available (open); not_set and chat show as "" too
//	away       away
//	lunch      away, subtype lunch
//	meeting    away, subtype meeting
//	busy       away, subtype busy
//	vacation   xa
//	dnd        dnd
//	(closed)   unavailable: shown with status "closed"; set with activity "closed"
var toState = map[string]presence.Value{
	"":         {State: presence.Available},
	"away":     {State: presence.Away},
	"lunch":    {State: presence.Away, Subtype: "lunch"},
	"meeting":  {State: presence.Away, Subtype: "meeting"},
	"busy":     {State: presence.Away, Subtype: "busy"},
	"vacation": {State: presence.XA},
	"dnd":      {State: presence.DND},
	"closed":   {State: presence.Unavailable},
}

// ToValue is the presence an activity and note set.
func ToValue(activity, note string) (presence.Value, error) {
	v, ok := toState[strings.ToLower(activity)]
	if !ok {
		return presence.Value{}, presence.Errorf(presence.CodeInvalidState, "%q is not an activity (away, lunch, meeting, busy, vacation, dnd, closed, or empty for available)", clip.Clip(activity))
	}
	v.Message = note
	return v, nil
}

// Presence is one entry of a PresenceState or PresenceUpdate.
type Presence struct {
	Contact  string `json:"contact"`
	Status   string `json:"status"`
	Activity string `json:"activity"`
	Note     string `json:"note"`
}

// FromValue shows a presence as Innovaphone does.
func FromValue(v presence.Value) Presence {
	p := Presence{Contact: "tel:", Status: "open", Note: v.Message}
	switch v.State {
	case presence.Away:
		p.Activity = "away"
		if _, ok := toState[v.Subtype]; ok && v.Subtype != "" && toState[v.Subtype].State == presence.Away {
			p.Activity = v.Subtype
		}
	case presence.XA:
		p.Activity = "vacation"
	case presence.DND:
		p.Activity = "dnd"
	case presence.Unavailable:
		p.Status = "closed"
	}
	return p
}
