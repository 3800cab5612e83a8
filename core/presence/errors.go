package presence

import (
	"errors"
	"fmt"
)

// Code is a stable error code. Hooks put it in PRESENCED_ERROR and the HTTP
// API in its JSON errors, so the values never change once released.
type Code string

// The error codes. Only CodeInternal carries detail that is logged rather than
// shown.
const (
	CodeInvalidState     Code = "INVALID_STATE"
	CodeInvalidUser      Code = "INVALID_USER"
	CodeInvalidText      Code = "INVALID_TEXT"
	CodeInvalidArgument  Code = "INVALID_ARGUMENT"
	CodeTooLong          Code = "TOO_LONG"
	CodeNotFound         Code = "NOT_FOUND"
	CodeAsteriskRejected Code = "ASTERISK_REJECTED"
	CodeUnavailable      Code = "UNAVAILABLE"
	CodeInternal         Code = "INTERNAL"
	// CodeTargetRefused: a webhook target at an address webhooks may not
	// reach (link-local, metadata, and loopback or private networks when
	// PRESENCED_WEBHOOK_ALLOW says so).
	CodeTargetRefused Code = "TARGET_REFUSED"
	// CodeNotAllowed: the dial policy (PRESENCED_DIAL_ALLOW/_DENY) refuses
	// the number.
	CodeNotAllowed Code = "NOT_ALLOWED"
	// CodeRateLimited: too many requests of one token, user, login or
	// address; the error wraps a *ratelimit.Error with the wait.
	CodeRateLimited Code = "RATE_LIMITED"
)

// Error is an error with a stable code and a plain sentence for the user.
type Error struct {
	Code Code
	Msg  string
	Err  error // the cause, if any; never shown to users for CodeInternal
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with the code and message that wraps cause.
func WrapError(code Code, cause error, msg string) *Error {
	return &Error{Code: code, Msg: msg, Err: cause}
}

// ErrorCode returns the code of err: its own if it is (or wraps) an *Error,
// CodeInternal for any other non-nil error, "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the sentence to show a user for err. Internal errors
// get a generic sentence: their detail belongs in the log, not on a channel.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != CodeInternal {
		return e.Msg
	}
	return "internal error"
}

// Result is an audit line's result: "ok", or err's code.
func Result(err error) string {
	if err == nil {
		return "ok"
	}
	return string(ErrorCode(err))
}

// ErrChangeLog is a write whose change the change log has not taken (its
// store stalled, or the cluster electing a leader): the change is applied
// and will be logged; the caller may try again, which changes nothing
// more.
func ErrChangeLog(err error) error {
	return WrapError(CodeUnavailable, err, "writing the change log")
}
