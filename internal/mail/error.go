package mail

import (
	"errors"
	"strconv"

	"github.com/mailca/mailca/internal/errs"
)

// Reason says why Compose refused a message.
type Reason int

const (
	// Missing means a required field was empty: From.Addr, To or Text.
	Missing Reason = iota
	// ControlCharacter means header text held a control character: CR, LF,
	// NUL, TAB, DEL, C1 controls, U+2028, U+2029 or a bidirectional control.
	// CR and LF are how header injection is attempted.
	ControlCharacter
	// InvalidUTF8 means a text field was not UTF-8.
	InvalidUTF8
	// TooLong means a field was longer than Compose accepts, or a line of the
	// message would have been longer than the 998 octets RFC 5322 allows.
	TooLong
	// InvalidAddress means an address was not a bare addr-spec such as
	// "alice@example.com": it had a display name, angle brackets, a comment,
	// a quoted local part or spaces, or did not parse at all.
	InvalidAddress
	// NonASCII means an extra header held something other than printable
	// ASCII and spaces; Compose does not encode extra headers.
	NonASCII
	// InvalidHeaderName means an extra header's name was not 1 to 76
	// printable ASCII characters without a colon.
	InvalidHeaderName
	// ReservedHeader means an extra header would replace or add to one
	// that Compose writes or that directs delivery: Date, From, Sender,
	// Reply-To, To, Cc, Bcc, Subject, Message-ID, MIME-Version, Content-*,
	// Received, Return-Path or Resent-*.
	ReservedHeader
	// DuplicateHeader means two extra headers had the same name, ignoring case.
	DuplicateHeader
	// InvalidMessageID means MessageID was not of the form <left@right> with
	// both sides printable ASCII dot-atoms.
	InvalidMessageID
	// InvalidContentType means an attachment's content type did not parse, or
	// was a multipart or message type, which cannot be base64-encoded.
	InvalidContentType
)

var reasons = [...]struct{ name, text string }{
	Missing:            {"Missing", "is required"},
	ControlCharacter:   {"ControlCharacter", "contains a control character"},
	InvalidUTF8:        {"InvalidUTF8", "is not valid UTF-8"},
	TooLong:            {"TooLong", "is too long"},
	InvalidAddress:     {"InvalidAddress", "is not a bare email address"},
	NonASCII:           {"NonASCII", "is not printable ASCII"},
	InvalidHeaderName:  {"InvalidHeaderName", "is not a valid header name"},
	ReservedHeader:     {"ReservedHeader", "is a header that Compose writes itself"},
	DuplicateHeader:    {"DuplicateHeader", "is given twice"},
	InvalidMessageID:   {"InvalidMessageID", "is not of the form <left@right>"},
	InvalidContentType: {"InvalidContentType", "is not a media type an attachment can have"},
}

// String returns the constant's name, for logs.
func (r Reason) String() string {
	if r < 0 || int(r) >= len(reasons) {
		return "Reason(" + strconv.Itoa(int(r)) + ")"
	}
	return reasons[r].name
}

func (r Reason) text() string {
	if r < 0 || int(r) >= len(reasons) {
		return "is invalid"
	}
	return reasons[r].text
}

// ComposeError reports a message that Compose refused. Field names the part
// of the Message at fault, such as "Subject", "To[2].Name",
// "Headers[X-Batch]" or "Attachments[0].Filename". The offending value is
// deliberately not included: it may be long, or hostile.
type ComposeError struct {
	Field  string
	Reason Reason
}

func (e *ComposeError) Error() string {
	return "mail: " + e.Field + " " + e.Reason.text()
}

// Kind reports errs.Invalid: the message, not the system, is at fault.
func (e *ComposeError) Kind() errs.Kind { return errs.Invalid }

// SendError reports a message that Sender.Send did not deliver.
//
// Permanent is true only when the server refused this message with a 5xx
// reply to MAIL, RCPT or DATA (such as 550 for an unknown mailbox), other
// than 530 (authentication required), or when the envelope itself is
// unusable or needs SMTPUTF8 that the server lacks; retrying will not help. Every other failure is
// temporary: 4xx replies, network errors, timeouts, cancellation, and any
// failure while connecting, greeting, starting TLS or authenticating, even
// with a 5xx code, since those concern the server or our configuration rather
// than the message and must not make the outbox give up on it.
type SendError struct {
	Op        string // "envelope", "closed", "wait", "dial", "tls", "greeting", "hello", "starttls", "auth", "mail", "rcpt", "data"
	Permanent bool
	Code      int    // SMTP reply code, 0 when there was none
	Msg       string // the server's reply text, or a description of the failure
	Err       error  // the cause, if any
}

func (e *SendError) Error() string {
	s := "mail: " + e.Op + ": "
	if e.Code != 0 {
		s += strconv.Itoa(e.Code) + " "
	}
	return s + e.Msg
}

func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is, or wraps, a permanent *SendError, so
// that a caller should stop retrying.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// ErrClosed is the cause of the *SendError that Send returns after Close.
var ErrClosed = errors.New("mail: sender closed")
