// Package errs gives domain errors a kind, so that every front end maps them the same way.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the people and programs that receive it.
type Kind int

// The kinds, from the caller's point of view. The zero value is Internal so
// that an unclassified error never reaches a user with its detail.
const (
	Internal  Kind = iota // a fault of ours; the detail goes to the log only
	Invalid               // the input is wrong; the message says how to fix it
	NotFound              // the named thing does not exist
	Conflict              // the request lost a race or repeats a finished action
	Forbidden             // the caller may not do this
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Forbidden:
		return "forbidden"
	}
	return "internal"
}

// Error is an error with a kind and a message safe to show the caller.
type Error struct {
	Kind Kind
	Msg  string // user-safe, lower-case, no final punctuation
	Err  error  // the cause, for errors.Is/As and the log
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// E returns an *Error of kind k with a formatted message.
func E(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k whose message is msg and whose cause is err.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

// KindOf returns the kind of the first error in err's chain that has one
// (an *Error or any error with a Kind() Kind method), else Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var k interface{ Kind() Kind }
	if errors.As(err, &k) {
		return k.Kind()
	}
	return Internal
}

// Message returns the text of err that is safe to show a user: the error's
// own text for every kind but Internal, which reads "internal error".
func Message(err error) string {
	if KindOf(err) == Internal {
		return "internal error"
	}
	return err.Error()
}
