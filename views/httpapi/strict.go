package httpapi

import (
	"errors"
	"io"
	"regexp"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// Request bodies and WebSocket messages are read strictly, as the hooks
// read their arguments: member names match exactly (encoding/json would
// take "STATE" for "state"), a name given twice is refused (encoding/json
// keeps the last), invalid UTF-8 and lone surrogates are INVALID_TEXT
// (encoding/json stores U+FFFD), unknown members and trailing data are
// refused. github.com/go-json-experiment/json does all of it by default,
// but for unknown members, which are asked for.

var surrogate = regexp.MustCompile(`(?i)surrogate|\\ud[89a-f]`)

// codeTooLarge is the code of a body over maxBody (413).
const codeTooLarge presence.Code = "TOO_LARGE"

// strictUnmarshal decodes one JSON object into v.
func strictUnmarshal(data []byte, v any) error {
	return jsonError(jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true)))
}

// jsonError turns a decoding error into the API's codes.
func jsonError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "invalid UTF-8") || surrogate.MatchString(msg):
		return presence.Errorf(presence.CodeInvalidText, "the JSON holds text that is not valid UTF-8 (or a lone UTF-16 surrogate)")
	case errors.Is(err, jsontext.ErrDuplicateName):
		return presence.Errorf(presence.CodeInvalidArgument, "the JSON object gives a member twice: %s", clip.Clip(strings.TrimPrefix(msg, "json: ")))
	}
	return presence.Errorf(presence.CodeInvalidArgument, "the body is not the expected JSON object: %s", clip.Clip(strings.TrimPrefix(msg, "json: ")))
}

// decodeBody reads a request body (at most maxBody bytes: front.go puts a
// MaxBytesReader and a deadline on it) into v.
func decodeBody(body io.Reader, v any) error {
	data, err := io.ReadAll(body)
	if err != nil {
		if tooLarge(err) {
			return errTooLarge
		}
		return presence.Errorf(presence.CodeInvalidArgument, "the body could not be read: %v", err)
	}
	return strictUnmarshal(data, v)
}

// errTooLarge is a body over maxBody (413).
var errTooLarge = presence.Errorf(codeTooLarge, "the body is larger than 16384 bytes")
