package api

import (
	"errors"
	"fmt"
)

// Code classifies an Error. Codes are part of the protocol: clients switch
// on them, so they never change meaning.
type Code string

// Error codes.
const (
	// CodeBadRequest: the line is not a valid request (JSON syntax, unknown
	// field, trailing data, wrong types).
	CodeBadRequest Code = "bad_request"
	// CodeUnsupportedVersion: the request's version is not Version.
	CodeUnsupportedVersion Code = "unsupported_version"
	// CodeUnknownMethod: no such method.
	CodeUnknownMethod Code = "unknown_method"
	// CodeTooLarge: the request line is longer than MaxRequestSize.
	CodeTooLarge Code = "too_large"
	// CodeInvalidArgument: the params are well-formed but not acceptable
	// (an IPv4 address, a tag of more than 47 bits, ...).
	CodeInvalidArgument Code = "invalid_argument"
	// CodeNotFound: no such context or locator.
	CodeNotFound Code = "not_found"
	// CodeExists: the context already exists.
	CodeExists Code = "exists"
	// CodeFailedPrecondition: the context is not in a state that allows the
	// operation (e.g. exploring a context that is not established).
	CodeFailedPrecondition Code = "failed_precondition"
	// CodeResourceExhausted: a table is full or a rate limit was hit.
	CodeResourceExhausted Code = "resource_exhausted"
	// CodeUnavailable: the daemon is starting or stopping.
	CodeUnavailable Code = "unavailable"
	// CodePermissionDenied: the caller is not allowed.
	CodePermissionDenied Code = "permission_denied"
	// CodeInternal: a bug or an unexpected failure in the daemon.
	CodeInternal Code = "internal"
)

// Error is the error of a failed request.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message + " (" + string(e.Code) + ")"
}

// Is makes errors.Is(err, api.ErrNotFound) and friends work: two *Error
// match when their codes are equal.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrBadRequest         = &Error{Code: CodeBadRequest}
	ErrUnsupportedVersion = &Error{Code: CodeUnsupportedVersion}
	ErrUnknownMethod      = &Error{Code: CodeUnknownMethod}
	ErrTooLarge           = &Error{Code: CodeTooLarge}
	ErrInvalidArgument    = &Error{Code: CodeInvalidArgument}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrExists             = &Error{Code: CodeExists}
	ErrFailedPrecondition = &Error{Code: CodeFailedPrecondition}
	ErrResourceExhausted  = &Error{Code: CodeResourceExhausted}
	ErrUnavailable        = &Error{Code: CodeUnavailable}
	ErrPermissionDenied   = &Error{Code: CodePermissionDenied}
	ErrInternal           = &Error{Code: CodeInternal}
)

// Errorf builds an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError converts any error into an *Error for the wire: an *Error in the
// chain is kept, anything else becomes CodeInternal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
