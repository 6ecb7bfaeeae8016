package outbox

import (
	"bytes"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"

	"github.com/mailca/mailca/internal/mail"
)

//go:embed templates/*
var defaultFS embed.FS

// names are the templates that enrolment sends; each must have a default.
var names = []string{"invitation", "verification", "application", "approved", "rejected", "issued", "revoked", "reminder", "digest"}

// Names returns the names of the templates every set provides.
func Names() []string { return slices.Clone(names) }

// TestTemplate is the default-only template of the test message the
// console's mail settings page sends; template sets do not override it.
const TestTemplate = "test"

// maxSubjectRunes bounds a rendered subject; a longer one is cut with an
// ellipsis. Mail clients show far less than this.
const maxSubjectRunes = 200

// maxProblems bounds the problems a Templates remembers, so that an
// override that fails for every message cannot grow memory without end.
const maxProblems = 100

// ErrErased is returned when a message's data has been erased, as it is
// once the message is sent or has failed, so there is nothing to render.
var ErrErased = errors.New("outbox: message data erased")

// RenderError reports a message that could not be rendered with the
// default templates. Retrying will not help.
type RenderError struct {
	Template string
	Err      error
}

func (e *RenderError) Error() string { return "outbox: render " + e.Template + ": " + e.Err.Error() }
func (e *RenderError) Unwrap() error { return e.Err }

// Rendered is a message rendered from its template, ready for mail.Compose.
type Rendered struct {
	Subject     string // one line without control characters
	Text        string
	HTML        string // empty when the template has no HTML part
	Attachments []mail.Attachment
}

// Templates renders outbox messages from the embedded default templates
// and an organisation's overrides. It is safe for concurrent use.
type Templates struct {
	defaults    map[string]*tmplSet
	overrideDir string

	setsMu sync.RWMutex
	sets   map[string]map[string]*tmplSet // template set -> name -> overrides; replaced whole by Reload

	mu       sync.Mutex
	problems []error
	seen     map[string]bool
}

// tmplSet is the templates of one message; in an override any may be nil.
type tmplSet struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// NewTemplates parses the default templates and the overrides under
// overrideDir, which need not exist ("" means none).
//
// An override is a file overrideDir/<set>/mail/<name>.subject, .txt or .html
// that replaces the default of that name for messages whose TemplateSet is
// <set>. The subject and the body are replaced independently. The body is
// the .txt and .html pair: a set that overrides <name>.txt without
// <name>.html sends that message as text only, so that no default HTML hides
// the organisation's text; an .html without a .txt is ignored.
//
// Templates are executed with the message's Data as dot, plus these keys:
// To (the recipient), Sender (Data["Sender"], which the Worker sets to the
// display name of its From address), Name (GivenName and Surname joined) and,
// in the body, Subject (the rendered subject). A reference to a key that is
// missing is an error; use {{index . "Key"}} for a key that may be absent.
//
// NewTemplates fails if a default is missing or does not parse. An override
// that does not parse is left out and recorded in Problems, as is one that
// fails when it is executed, in which case the default is used: a broken
// override never stops mail. Overrides are read here, and again by Reload.
func NewTemplates(overrideDir string) (*Templates, error) {
	t := &Templates{
		defaults:    make(map[string]*tmplSet, len(names)),
		overrideDir: overrideDir,
		sets:        make(map[string]map[string]*tmplSet),
		seen:        make(map[string]bool),
	}
	root, err := fs.Sub(defaultFS, "templates")
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	for _, name := range append(slices.Clone(names), TestTemplate) {
		ts, err := parseSet(root, name)
		if err != nil {
			return nil, err
		}
		if ts.subject == nil || ts.text == nil || ts.html == nil {
			return nil, fmt.Errorf("outbox: default template %s is incomplete", name)
		}
		t.defaults[name] = ts
	}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the overrides again, after an edit, and swaps them in for
// the messages rendered from then on. On an error the overrides in use
// stay.
func (t *Templates) Reload() error {
	if t.overrideDir == "" {
		return nil
	}
	sets, err := t.loadOverrides(t.overrideDir)
	if err != nil {
		return err
	}
	t.setsMu.Lock()
	t.sets = sets
	t.setsMu.Unlock()
	return nil
}

// loadOverrides reads dir/*/mail/*. Only an unreadable dir itself is an
// error; a missing one means no overrides.
func (t *Templates) loadOverrides(dir string) (map[string]map[string]*tmplSet, error) {
	sets := make(map[string]map[string]*tmplSet)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return sets, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: template overrides: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		set := e.Name()
		mailDir := path.Join(dir, set, "mail")
		files, err := os.ReadDir(mailDir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.problem(fmt.Errorf("outbox: template set %s: %w", set, err))
			continue
		}
		fsys := os.DirFS(mailDir)
		byName := make(map[string]*tmplSet)
		for _, f := range files {
			base, ext, ok := strings.Cut(f.Name(), ".")
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			if !ok || !slices.Contains(names, base) || (ext != "subject" && ext != "txt" && ext != "html") {
				t.problem(fmt.Errorf("outbox: template set %s: %s is not a template this program sends, ignored", set, f.Name()))
				continue
			}
			if byName[base] != nil {
				continue
			}
			ts, err := parseSet(fsys, base)
			if err != nil {
				// parseSet stops at the first bad file; keep what parses.
				t.problem(fmt.Errorf("outbox: template set %s: %w", set, err))
				ts = parseEach(fsys, base)
			}
			if ts.html != nil && ts.text == nil {
				t.problem(fmt.Errorf("outbox: template set %s: %s.html without %s.txt, ignored", set, base, base))
				ts.html = nil
			}
			if ts.subject != nil || ts.text != nil {
				byName[base] = ts
			}
		}
		if len(byName) > 0 {
			sets[set] = byName
		}
	}
	return sets, nil
}

// parseSet parses name.subject, name.txt and name.html from fsys, leaving
// nil those that do not exist, and fails at the first that does not parse.
func parseSet(fsys fs.FS, name string) (*tmplSet, error) {
	ts := &tmplSet{}
	var err error
	if ts.subject, err = parseText(fsys, name+".subject"); err != nil {
		return nil, err
	}
	if ts.text, err = parseText(fsys, name+".txt"); err != nil {
		return nil, err
	}
	if ts.html, err = parseHTML(fsys, name+".html"); err != nil {
		return nil, err
	}
	return ts, nil
}

// parseEach is parseSet keeping the files that parse.
func parseEach(fsys fs.FS, name string) *tmplSet {
	ts := &tmplSet{}
	ts.subject, _ = parseText(fsys, name+".subject")
	ts.text, _ = parseText(fsys, name+".txt")
	ts.html, _ = parseHTML(fsys, name+".html")
	if ts.text == nil {
		ts.html = nil
	}
	return ts
}

func parseText(fsys fs.FS, file string) (*texttemplate.Template, error) {
	b, err := fs.ReadFile(fsys, file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	tm, err := texttemplate.New(file).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return tm, nil
}

func parseHTML(fsys fs.FS, file string) (*htmltemplate.Template, error) {
	b, err := fs.ReadFile(fsys, file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	tm, err := htmltemplate.New(file).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return tm, nil
}

// Problems returns the override problems found so far: files that did not
// parse or were ignored, and overrides that failed to execute and were
// replaced by the default. The errors name the set and file but hold no
// message data. At most the first 100 distinct problems are kept.
func (t *Templates) Problems() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.problems)
}

func (t *Templates) problem(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := err.Error()
	if t.seen[key] || len(t.problems) >= maxProblems {
		return
	}
	t.seen[key] = true
	t.problems = append(t.problems, err)
}

// Render renders m with the templates of its TemplateSet, falling back to
// the defaults. The "issued" message gets the certificate in
// Data["CertificatePEM"] attached twice: as certificate.pem
// (application/x-pem-file) and as DER certificate.cer
// (application/pkix-cert), the form Outlook and Apple Mail open.
//
// Control characters in the subject, which a value in Data may bring, become
// spaces, so the subject is always one line that mail.Compose accepts.
// Render returns ErrErased for a message without data and a *RenderError
// when the default templates fail, as they do for an unknown template name
// or a missing key.
func (t *Templates) Render(m Message) (*Rendered, error) {
	if m.Data == nil {
		return nil, ErrErased
	}
	def := t.defaults[m.Template]
	if def == nil {
		return nil, &RenderError{m.Template, errors.New("unknown template")}
	}
	t.setsMu.RLock()
	over := t.sets[m.TemplateSet][m.Template]
	t.setsMu.RUnlock()
	if over == nil {
		over = &tmplSet{}
	}

	view := make(map[string]string, len(m.Data)+4)
	for k, v := range m.Data {
		view[k] = v
	}
	view["To"] = m.To
	view["Sender"] = m.Data["Sender"]
	view["Name"] = strings.TrimSpace(m.Data["GivenName"] + " " + m.Data["Surname"])

	var r Rendered
	var err error
	r.Subject, err = t.subject(over.subject, def.subject, m, view)
	if err != nil {
		return nil, &RenderError{m.Template, err}
	}
	view["Subject"] = r.Subject

	if over.text != nil {
		text, html, err := execBody(over, view)
		if err == nil {
			r.Text, r.HTML = text, html
		} else {
			t.overrideFailed(m, "body", err)
		}
	}
	if r.Text == "" {
		if r.Text, r.HTML, err = execBody(def, view); err != nil {
			return nil, &RenderError{m.Template, err}
		}
		if r.Text == "" {
			return nil, &RenderError{m.Template, errors.New("empty text")}
		}
	}

	// A value that is not UTF-8 must not make Compose refuse the message.
	r.Text, r.HTML = strings.ToValidUTF8(r.Text, "\uFFFD"), strings.ToValidUTF8(r.HTML, "\uFFFD")

	if m.Template == "issued" {
		if r.Attachments, err = certAttachments(m.Data["CertificatePEM"]); err != nil {
			return nil, &RenderError{m.Template, err}
		}
	}
	return &r, nil
}

// subject executes the override, falling back to the default, and makes
// the result one clean line.
func (t *Templates) subject(over, def *texttemplate.Template, m Message, view map[string]string) (string, error) {
	if over != nil {
		s, err := execText(over, view)
		if s = cleanSubject(s); err == nil && s != "" {
			return s, nil
		}
		if err == nil {
			err = errors.New("empty subject")
		}
		t.overrideFailed(m, "subject", err)
	}
	s, err := execText(def, view)
	if err != nil {
		return "", err
	}
	if s = cleanSubject(s); s == "" {
		return "", errors.New("empty subject")
	}
	return s, nil
}

func (t *Templates) overrideFailed(m Message, part string, err error) {
	t.problem(fmt.Errorf("outbox: template set %s: %s %s failed, default used: %w", m.TemplateSet, m.Template, part, err))
}

func execBody(ts *tmplSet, view map[string]string) (text, html string, err error) {
	if text, err = execText(ts.text, view); err != nil {
		return "", "", err
	}
	if ts.html != nil {
		var b bytes.Buffer
		if err := ts.html.Execute(&b, view); err != nil {
			return "", "", err
		}
		html = b.String()
	}
	return text, html, nil
}

func execText(tm *texttemplate.Template, view map[string]string) (string, error) {
	var b bytes.Buffer
	if err := tm.Execute(&b, view); err != nil {
		return "", err
	}
	return b.String(), nil
}

// cleanSubject turns every control character, and the characters that some
// software takes for line breaks or that reorder text, into a space, folds
// runs of spaces into one, trims, and cuts the result to maxSubjectRunes.
// mail.Compose refuses the same set of characters (mail.isControl).
func cleanSubject(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			space = b.Len() > 0
		case r == utf8.RuneError:
			// Invalid UTF-8, or a real U+FFFD: either way nothing to show.
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	out := b.String()
	if utf8.RuneCountInString(out) <= maxSubjectRunes {
		return out
	}
	runes := []rune(out)[:maxSubjectRunes-1]
	return strings.TrimRight(string(runes), " ") + "…"
}

// certAttachments returns the certificate in PEM and in DER.
func certAttachments(p string) ([]mail.Attachment, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("CertificatePEM holds no PEM certificate")
	}
	return []mail.Attachment{
		{Filename: "certificate.pem", ContentType: "application/x-pem-file", Data: pem.EncodeToMemory(block)},
		{Filename: "certificate.cer", ContentType: "application/pkix-cert", Data: block.Bytes},
	}, nil
}

// Preview renders m for the development mailbox, which shows messages that
// stay pending when no SMTP server is configured. It is Render without the
// attachments; a message already sent has no data and gives ErrErased.
func (t *Templates) Preview(m Message) (subject, text, html string, err error) {
	r, err := t.Render(m)
	if err != nil {
		return "", "", "", err
	}
	return r.Subject, r.Text, r.HTML, nil
}
