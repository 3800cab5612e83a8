package aritest

// Contract is the part of Asterisk 22's ARI that presenced uses, derived
// by hand from the REST API definitions (rest-api/api-docs/*.json,
// Swagger 1.2): for each operation, its method, path (with {parameters})
// and query parameters. The fake server refuses any request outside it,
// so that presenced cannot come to depend on something Asterisk does not
// offer.
var Contract = []Operation{
	{Method: "GET", Path: "/asterisk/info", Query: []string{"only"}},                                                                            // asterisk.json getInfo
	{Method: "GET", Path: "/asterisk/variable", Query: []string{"variable"}, Required: []string{"variable"}},                                    // getGlobalVar
	{Method: "POST", Path: "/asterisk/variable", Query: []string{"variable", "value"}, Body: true},                                              // setGlobalVar; "variable" required, in the query or a JSON body
	{Method: "GET", Path: "/deviceStates"},                                                                                                      // deviceStates.json list
	{Method: "GET", Path: "/deviceStates/{deviceName}"},                                                                                         // get
	{Method: "PUT", Path: "/deviceStates/{deviceName}", Query: []string{"deviceState"}},                                                         // update; deviceState required (Asterisk answers 500 without it)
	{Method: "DELETE", Path: "/deviceStates/{deviceName}"},                                                                                      // delete
	{Method: "GET", Path: "/applications"},                                                                                                      // applications.json list
	{Method: "GET", Path: "/applications/{applicationName}"},                                                                                    // get
	{Method: "POST", Path: "/applications/{applicationName}/subscription", Query: []string{"eventSource"}, Required: []string{"eventSource"}},   // subscribe
	{Method: "DELETE", Path: "/applications/{applicationName}/subscription", Query: []string{"eventSource"}, Required: []string{"eventSource"}}, // unsubscribe
	{Method: "PUT", Path: "/applications/{applicationName}/eventFilter", Body: true},                                                            // filter
	{Method: "GET", Path: "/channels/{channelId}/variable", Query: []string{"variable"}, Required: []string{"variable"}},                        // channels.json getChannelVar
	{Method: "POST", Path: "/channels/{channelId}/variable", Query: []string{"variable", "value", "report_events"}, Body: true},                 // setChannelVar
	{Method: "POST", Path: "/channels/{channelId}/continue", Query: []string{"context", "extension", "priority", "label"}},                      // continueInDialplan
	{Method: "GET", Path: "/events", Query: []string{"app", "subscribeAll", "api_key"}, Required: []string{"app"}},                              // events.json eventWebsocket
}

// Operation is one ARI operation.
type Operation struct {
	Method   string
	Path     string
	Query    []string // the query parameters it takes (api_key is always allowed)
	Required []string // of those, the ones it needs
	Body     bool     // parameters may come as a JSON object body instead
}

// match finds the operation for a method and escaped path; params gets the
// {parameters}, unescaped. A path with more or fewer segments (as an
// unescaped "/" in a device name makes) matches nothing.
func match(method string, segs []string) (*Operation, map[string]string, bool) {
	pathFound := false
	for i := range Contract {
		op := &Contract[i]
		want := splitPath(op.Path)
		if len(want) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for j, w := range want {
			if len(w) > 1 && w[0] == '{' {
				params[w[1:len(w)-1]] = segs[j]
			} else if w != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		pathFound = true
		if op.Method == method {
			return op, params, true
		}
	}
	return nil, nil, pathFound
}

func splitPath(p string) []string {
	var out []string
	for _, s := range splitSlash(p) {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func splitSlash(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}
