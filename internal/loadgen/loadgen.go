// Package loadgen drives FastAGI servers the way a busy Asterisk does, for
// the load command (cmd/agiload) and the benchmarks: many concurrent
// sessions, each one whole presence/set hook over loopback (environment,
// the server's reads and writes, result variables, close).
//
// Its Asterisk side is lean on purpose, so that the client costs little of
// the machine the server is measured on; it answers presence reads from
// what was written, which is all a presence/set hook needs to confirm.
// The floor (ServeFloor) is a bare hand-written FastAGI handler that sends
// the same commands presenced sends for presence/set, and nothing else.
package loadgen

import (
	"bufio"
	"context"
	b64 "encoding/base64"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Result is the outcome of one load run.
type Result struct {
	Sessions  int
	Errors    int
	FirstErr  error
	Elapsed   time.Duration
	Latencies []time.Duration // one per successful session, sorted
}

// Rate returns sessions per second.
func (r Result) Rate() float64 { return float64(r.Sessions) / r.Elapsed.Seconds() }

// Percentile returns the p-th percentile latency (0 < p <= 100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies))*p/100+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// Run keeps concurrency sessions going against addr for d.
func Run(ctx context.Context, addr string, concurrency int, d time.Duration) Result {
	end := time.Now().Add(d)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var mu sync.Mutex
	var res Result
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ast := NewAsterisk()
			user := strconv.Itoa(2000 + w)
			var lat []time.Duration
			errs := 0
			var first error
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := ast.Session(ctx, addr, user, i%2 == 0); err != nil {
					// A dial cut by the run's deadline is not an error
					// (net.Dialer's deadline can fire before ctx.Err is set).
					if time.Now().Before(end) {
						errs++
						if first == nil {
							first = err
						}
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Errors += errs
			if res.FirstErr == nil {
				res.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Sessions = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res
}

// Message is the presence message of every load session: long enough to
// matter, with the characters that need quoting and encoding.
const Message = `Lunch, back at 2 "ish" (C:\dir)`

// Asterisk is one emulated Asterisk connection source with its own astdb
// of CustomPresence values (one per load worker, so no locks).
type Asterisk struct {
	db  map[string]string // provider -> stored value
	buf []byte
}

// NewAsterisk returns an emulated Asterisk for one goroutine's sessions.
func NewAsterisk() *Asterisk { return &Asterisk{db: map[string]string{}} }

// Session runs one AGI(agi://addr/presence/set,user,away|available,,Message)
// until the server closes the connection.
func (a *Asterisk) Session(ctx context.Context, addr, user string, away bool) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	state := "available"
	if away {
		state = "away"
	}
	env := "agi_network: yes\nagi_network_script: presence/set\nagi_request: agi://" + addr + "/presence/set\n" +
		"agi_channel: PJSIP/" + user + "-00000001\nagi_language: en\nagi_type: PJSIP\nagi_uniqueid: 1795334483.54\n" +
		"agi_version: 22.10.1\nagi_callerid: " + user + "\nagi_calleridname: User\nagi_callingpres: 0\nagi_callingani2: 0\n" +
		"agi_callington: 0\nagi_callingtns: 0\nagi_dnid: 7000\nagi_rdnis: unknown\nagi_context: internal\nagi_extension: *35\n" +
		"agi_priority: 1\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140405770794688\n" +
		"agi_arg_1: " + user + "\nagi_arg_2: " + state + "\nagi_arg_3: \nagi_arg_4: " + Message + "\n\n"
	if _, err := io.WriteString(conn, env); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := conn.Write(a.answer(line[:len(line)-1])); err != nil {
			return err
		}
	}
}

// answer handles the commands of a presence/set hook.
func (a *Asterisk) answer(cmd []byte) []byte {
	const get = "GET VARIABLE PRESENCE_STATE("
	const full = `GET FULL VARIABLE "${PRESENCE_STATE(`
	const set = `SET VARIABLE "PRESENCE_STATE(`
	a.buf = a.buf[:0]
	s := string(cmd)
	switch {
	case strings.HasPrefix(s, full):
		// "${PRESENCE_STATE(P,value)},${PRESENCE_STATE(P,subtype,e)},${...message,e)}"
		provider, _, _ := strings.Cut(s[len(full):], ",")
		stored := a.db[provider]
		v := "not_set,,"
		if stored != "" {
			f := strings.Split(stored, ",")
			v = f[0] + "," + f[1] + "," + f[2]
		}
		a.buf = append(append(append(a.buf, "200 result=1 ("...), v...), ")\n"...)
	case strings.HasPrefix(s, get):
		args := strings.Split(strings.TrimSuffix(s[len(get):], ")"), ",")
		stored := a.db[args[0]]
		fields := strings.Split(stored, ",")
		var v string
		switch args[1] {
		case "value":
			v = "not_set"
			if stored != "" {
				v = fields[0]
			}
		case "subtype":
			if len(fields) > 1 {
				v = fields[1] // stored base64 (the e form) read with e
			}
		case "message":
			if len(fields) > 2 {
				v = fields[2]
			}
		}
		a.buf = append(append(append(a.buf, "200 result=1 ("...), v...), ")\n"...)
	case strings.HasPrefix(s, set):
		provider, value, _ := strings.Cut(s[len(set):], `)" "`)
		a.db[provider] = strings.TrimSuffix(value, `"`)
		a.buf = append(a.buf, "200 result=1\n"...)
	case strings.HasPrefix(s, "SET VARIABLE "):
		a.buf = append(a.buf, "200 result=1\n"...)
	default:
		a.buf = append(a.buf, "510 Invalid or unknown command\n"...)
	}
	return a.buf
}

// ServeFloor serves the floor on ln until it is closed: read the
// environment, send the commands of a presence/set (read, write, read back,
// six result variables), read one reply line each, close. No validation,
// no store, no confirmation. The straightforward floor reads each of the
// three fields with its own GET VARIABLE (thirteen commands); with few, it
// reads them in one GET FULL VARIABLE as presenced does (nine).
func ServeFloor(ln net.Listener, few bool) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go floorSession(conn, few)
	}
}

func floorSession(conn net.Conn, few bool) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	var user, state, message string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		switch k {
		case "agi_arg_1":
			user = v
		case "agi_arg_2":
			state = v
		case "agi_arg_4":
			message = v
		}
	}
	fn := "PRESENCE_STATE(CustomPresence:" + user
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(message)
	enc := state + ",," + b64.StdEncoding.EncodeToString([]byte(message)) + ",e"
	read := []string{"GET VARIABLE " + fn + ",value)", "GET VARIABLE " + fn + ",subtype,e)", "GET VARIABLE " + fn + ",message,e)"}
	if few {
		read = []string{`GET FULL VARIABLE "${` + fn + `,value)},${` + fn + `,subtype,e)},${` + fn + `,message,e)}"`}
	}
	cmds := append(append(append(append([]string{}, read...), `SET VARIABLE "`+fn+`)" "`+enc+`"`), read...),
		`SET VARIABLE "PRESENCED_STATE" "`+state+`"`, `SET VARIABLE "PRESENCED_SUBTYPE" ""`,
		`SET VARIABLE "PRESENCED_MESSAGE" "`+quoted+`"`, `SET VARIABLE "PRESENCED_ERROR" ""`,
		`SET VARIABLE "PRESENCED_ERROR_TEXT" ""`, `SET VARIABLE "PRESENCED_RESULT" "OK"`)
	for _, c := range cmds {
		if _, err := io.WriteString(conn, c+"\n"); err != nil {
			return
		}
		if _, err := br.ReadString('\n'); err != nil {
			return
		}
	}
}
