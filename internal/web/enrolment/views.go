package enrolment

import (
	"html/template"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The data each view receives. Organisation templates get exactly these
// values (docs/restyling.md), so their fields are a published contract:
// add to them, do not rename them.

// viewNames lists every view; New fails if one lacks its default template.
var viewNames = []string{"form", "submitted", "activate", "activated", "open", "open_sent", "error", "revoke", "revoke_done"}

// Page is embedded in every view's data.
type Page struct {
	Title     string // the page's own title, without the site name
	StyleURL  string // the stylesheet: the template set's style.css when it has one
	AssetBase string // URL of the set's static folder, ending in "/"; "/static/" without a set
	ScriptURL string // the copy-button script, "/static/copy.js"
	Set       string // the template set, "" for the defaults
	Policy    string // the policy's name, "" when not known (bad links)
	HasErrors bool   // the page shows input errors; the title starts with "Error: "
}

func (p *Page) page() *Page { return p }

// pageData is implemented by every view's data through its embedded Page.
type pageData interface{ page() *Page }

// Problem is one entry of the error summary above a form, linking to the
// field it is about.
type Problem struct {
	ID   string // the id of the input the problem is about
	Text string
}

// FieldView is one field of the enrolment form.
type FieldView struct {
	Name         string // the policy's field name: "given_name", "surname" or a custom one
	ID           string // the input's id
	InputName    string // the input's name
	Label        string
	Help         string
	Value        string
	Error        string // shown next to the field; "" when fine
	Required     bool
	Editable     bool // false: the value comes from the invitation and is shown read-only
	MaxLength    int
	Autocomplete string // "given-name", "family-name" or ""
	DescribedBy  string // ids for aria-describedby: hint, read-only note, error
	Hint         string // id of the help text, "" when none
	ReadOnlyNote string // id of the read-only note, "" when editable
	ErrorID      string // id of the error message, "" when none
}

// FormView is the enrolment form, for invitation, verification and
// referral links alike.
type FormView struct {
	Page
	Heading     string
	Description string // the policy's description, written for administrators: the default templates do not show it
	Action      string // where the form posts
	Referral    string // the referral token for the hidden "t" input; "" for links
	Mailbox     string // read-only: the certificate is for this mailbox
	GivenName   string // as known so far, for a greeting
	Fields      []FieldView
	Terms       TermsView
	Problems    []Problem // the error summary, in field order
}

// TermsView is the subscriber agreement on the form.
type TermsView struct {
	Version  string // posted back in the hidden "terms_version" input
	Text     string
	Accepted bool
	Error    string
}

// SubmittedView thanks the user and says what happens next.
type SubmittedView struct {
	Page
	Mailbox   string
	GivenName string
	Approved  bool // approved at once: the activation link is on its way
	// LinkLifetime is how long the activation link works, as "24 hours".
	LinkLifetime string
}

// KeyModeView is one way of getting a key on the activation page.
type KeyModeView struct {
	Value   string // "server" or "csr", the "mode" input's value
	ID      string
	Label   string
	Hint    string
	Checked bool
}

// ActivateView is the activation page.
type ActivateView struct {
	Page
	Action    string
	Mailbox   string
	GivenName string
	Modes     []KeyModeView
	OffersCSR bool
	CSR       string // the pasted request, kept after an error
	ModeError string
	CSRError  string
	Error     string // a problem not about one field
	Problems  []Problem
}

// ActivatedView shows the issued certificate. With a server-generated key
// it holds the only copy of the key (P12URL) and its password.
type ActivatedView struct {
	Page
	Mailbox   string
	Server    bool         // a server-generated key: PKCS#12 and password
	Password  string       // shown once
	Filename  string       // of the PKCS#12 or certificate download
	P12URL    template.URL // data:application/x-pkcs12;base64,...
	CertPEM   string
	CertURL   template.URL // data:application/x-pem-file;base64,...
	ChainPEM  string
	ChainURL  template.URL
	ChainFile string // "chain.pem" download name
	Serial    string
	NotAfter  string
	Issuer    string
}

// OpenView is the start page of open self-enrolment.
type OpenView struct {
	Page
	Action      string
	Description string // the policy's description; not shown by the default template
	Email       string
	EmailError  string
	Problems    []Problem
}

// OpenSentView is the answer to every accepted open self-enrolment start.
type OpenSentView struct {
	Page
	Email        string
	LinkLifetime string // how long the link works, as "24 hours"
}

// ErrorView is an error page.
type ErrorView struct {
	Page
	Status  int
	Heading string
	Message string
	BadLink bool // the problem is the link: say to ask for a new one
}

// lifetime words a link's lifetime for people: "24 hours", "30 minutes".
func lifetime(d time.Duration) string {
	unit, n := "minute", int(d/time.Minute)
	if d >= 2*time.Hour && d%time.Hour == 0 {
		unit, n = "hour", int(d/time.Hour)
	}
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// sentence makes a lower-case error message read as a sentence.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.ContainsAny(msg[len(msg)-1:], ".!?") {
		msg += "."
	}
	return msg
}

// RevokeView is the page behind a subscriber's revocation link.
type RevokeView struct {
	Page
	Action      string
	Mailbox     string
	Serial      string
	Revoked     bool // already revoked: the page says so and offers no form
	Reasons     []ReasonView
	ReasonError string
	Problems    []Problem
}

// ReasonView is one revocation reason offered to the subscriber.
type ReasonView struct {
	Value, Label, Hint string
	Checked            bool
}

// RevokedView confirms a revocation.
type RevokedView struct {
	Page
	Mailbox string
	Serial  string
	Already bool // it had been revoked before this request
}
