package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/mailbox"
)

// mailStore is what the mail page writes.
type mailStore interface {
	// ConsoleEnqueueTest enqueues a test message to to, with its audit
	// event, in one transaction.
	ConsoleEnqueueTest(ctx context.Context, actor, to, messageID string) error
}

// mailboxSize is how many messages of the development mailbox the mail
// page lists.
const mailboxSize = 100

// mailPage is the data of the mail view.
type mailPage struct {
	Settings MailSettings
	// Dev is true when there is no SMTP server: mail is kept in the
	// development mailbox, listed in Messages.
	Dev      bool
	Messages []DevMessage
	To       string
	Errors   map[string]string
}

// mailPage shows the outgoing mail settings (never the SMTP password), the
// test message form and, without an SMTP server, the development mailbox.
//
// Pattern: GET /console/mail.
func (c *Console) mailPage(w http.ResponseWriter, r *http.Request) {
	c.renderMail(w, r, http.StatusOK, &mailPage{To: auth.FromContext(r.Context()).Email})
}

func (c *Console) renderMail(w http.ResponseWriter, r *http.Request, status int, d *mailPage) {
	d.Settings = c.cfg.Mail
	if c.cfg.Mailbox != nil {
		d.Dev = true
		var err error
		if d.Messages, err = c.cfg.Mailbox.List(r.Context(), mailboxSize); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.render(w, r, status, "mail", d)
}

// mailShow shows one message of the development mailbox, with its links:
// the text part, and the HTML part as source (the console's CSP would not
// run it anyway).
//
// Pattern: GET /console/mail/{id}.
func (c *Console) mailShow(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 || c.cfg.Mailbox == nil {
		c.notFound(w, r)
		return
	}
	m, err := c.cfg.Mailbox.Get(r.Context(), id)
	if err == nil && m == nil {
		err = errs.E(errs.NotFound, "there is no such message")
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// The message holds live enrolment links.
	noReferrer(w)
	c.render(w, r, http.StatusOK, "mail_show", m)
}

// mailTest enqueues a test message to the address given, through the
// outbox like every other email, so it shows that delivery works.
//
// Pattern: POST /console/mail/test.
func (c *Console) mailTest(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	to := strings.TrimSpace(r.PostFormValue("to"))
	addr, err := mailbox.Parse(to)
	if err != nil {
		c.renderMail(w, r, http.StatusBadRequest, &mailPage{To: to, Errors: map[string]string{"to": "not an email address such as ann@example.org"}})
		return
	}
	if err := c.cfg.Store.ConsoleEnqueueTest(r.Context(), p.Actor(), addr.String(), c.messageID()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/mail", "A test message to "+addr.String()+" is in the outbox; it is sent within a minute.")
}

// messageID returns a new Message-ID on the public host's name.
func (c *Console) messageID() string {
	host := "mailca.invalid"
	if u, err := url.Parse(c.cfg.PublicURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	b := make([]byte, 16)
	rand.Read(b)
	return "<" + hex.EncodeToString(b) + "@" + host + ">"
}
