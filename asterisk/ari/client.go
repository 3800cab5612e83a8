// Package ari is presenced's ARI adapter: a REST client for the few
// operations presenced uses, the DND device, and the device-state feed
// (DeviceStateChanged over the event websocket, with a full resync after
// every reconnect and Asterisk restart).
//
// It does not use github.com/CyCoreSystems/ari/v5 v5.3.1: its defects sit
// in the transport presenced would use (see README "ARI" and
// libdefects/ari_test.go): an event type it does not know makes it hand a nil
// event to its bus, which panics in a goroutine of its own and takes the
// process down (Asterisk 22 sends several such types); its bus drops
// events when a consumer is 100 behind; its HTTP calls take no context and
// have no timeout; Connected() is read without synchronisation; and it
// reconnects silently, so a resync cannot be tied to the reconnect. Here
// REST goes through net/http with a context and a timeout on every call,
// and events through github.com/coder/websocket, decoding only the event
// types presenced uses and ignoring the rest.
package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Client calls ARI's REST operations.
type Client struct {
	URL      string // "http://127.0.0.1:8088/ari"
	User     string
	Password string
	HTTP     *http.Client // nil: one with a 10 s timeout
	// Log gets each call and its answer at trace level (never the
	// Authorization header).
	Log zerolog.Logger
}

// HTTPError is a non-2xx ARI answer.
type HTTPError struct {
	Op      string
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("ARI %s: HTTP %d: %s", e.Op, e.Status, e.Message)
}

// basicAuth is the Authorization header value of the client's
// credentials, for REST calls and the event websocket alike.
func (c *Client) basicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.User+":"+c.Password))
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

// do runs one call; body, if not nil, is sent as JSON; out, if not nil,
// receives the JSON answer.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	u := strings.TrimSuffix(c.URL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("ARI %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", c.basicAuth())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ARI %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("ARI %s %s: reading the answer: %w", method, path, err)
	}
	c.Log.Trace().Str("method", method).Str("path", path).Str("query", q.Encode()).Int("status", resp.StatusCode).
		Bytes("answer", data).Msg("ari call")
	if resp.StatusCode/100 != 2 {
		var m struct{ Message string }
		_ = json.Unmarshal(data, &m)
		return &HTTPError{Op: method + " " + path, Status: resp.StatusCode, Message: m.Message}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("ARI %s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// Info returns Asterisk's startup time and entity id (GET /asterisk/info):
// a new startup time means Asterisk restarted.
func (c *Client) Info(ctx context.Context) (startup, entity string, err error) {
	var info struct {
		System struct {
			EntityID string `json:"entity_id"`
		} `json:"system"`
		Status struct {
			StartupTime string `json:"startup_time"`
		} `json:"status"`
	}
	if err := c.do(ctx, "GET", "/asterisk/info", nil, nil, &info); err != nil {
		return "", "", err
	}
	return info.Status.StartupTime, info.System.EntityID, nil
}

// devicePath escapes a device name into one path segment: "PJSIP/1001"
// must travel as "PJSIP%2F1001" (BEHAVIOUR.md 4.3).
func devicePath(name string) string { return "/deviceStates/" + url.PathEscape(name) }

// DeviceState reads a device's state.
func (c *Client) DeviceState(ctx context.Context, name string) (string, error) {
	var d struct{ State string }
	if err := c.do(ctx, "GET", devicePath(name), nil, nil, &d); err != nil {
		return "", err
	}
	return d.State, nil
}

// SetDeviceState sets the state of a Stasis: device.
func (c *Client) SetDeviceState(ctx context.Context, name, state string) error {
	return c.do(ctx, "PUT", devicePath(name), url.Values{"deviceState": {state}}, nil, nil)
}

// Subscribe subscribes an application to event sources
// ("deviceState:PJSIP/1001"), in one call.
func (c *Client) Subscribe(ctx context.Context, app string, sources []string) error {
	return c.do(ctx, "POST", "/applications/"+url.PathEscape(app)+"/subscription", url.Values{"eventSource": {strings.Join(sources, ",")}}, nil, nil)
}

// Unsubscribe removes event sources from an application.
func (c *Client) Unsubscribe(ctx context.Context, app string, sources []string) error {
	return c.do(ctx, "DELETE", "/applications/"+url.PathEscape(app)+"/subscription", url.Values{"eventSource": {strings.Join(sources, ",")}}, nil, nil)
}

// SetEventFilter lets only the given event types reach the application.
func (c *Client) SetEventFilter(ctx context.Context, app string, types []string) error {
	type t struct {
		Type string `json:"type"`
	}
	var allowed []t
	for _, ty := range types {
		allowed = append(allowed, t{ty})
	}
	return c.do(ctx, "PUT", "/applications/"+url.PathEscape(app)+"/eventFilter", nil, map[string]any{"allowed": allowed}, nil)
}

func asHTTP(err error, target **HTTPError) bool { return errors.As(err, target) }
