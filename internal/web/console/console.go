// Package console is the RA Management Console: the server-rendered pages under /console/ where administrators, RA officers and auditors work.
package console

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
)

// Config configures the console. Auth, Enrol and Store are required.
type Config struct {
	// Auth holds the accounts and sessions.
	Auth *auth.Service
	// Enrol runs the enrolment process.
	Enrol *enrol.Service
	// Store answers the console's read queries; *sqlite.DB implements it.
	Store Store
	// Mailbox is the development mailbox, shown on the mail page; nil when
	// an SMTP server is configured.
	Mailbox DevMailbox
	// Mail is what the mail settings page shows, and how it sends a test
	// message.
	Mail MailSettings
	// TemplateDir is the data directory's "templates" folder ("" for none).
	TemplateDir string
	// ReloadMail makes the emails sent from now on use the templates of
	// TemplateDir as they are after an edit; nil when nothing renders
	// email in this process.
	ReloadMail func() error
	// ChainPEM is the issuing chain (the issuing CA's certificate and those
	// above it), appended to a certificate in its chain.pem download.
	ChainPEM []byte
	// APIKeys creates, lists and revokes the integration API's keys (the
	// API keys page); nil uses a service on Store when Store is an
	// apikey.Store.
	APIKeys *apikey.Service
	// Webhooks keeps the webhook endpoints and lists their deliveries (the
	// webhooks page); nil uses Store when it is a WebhookStore.
	Webhooks WebhookStore
	// PublicURL is the address users reach mailca at, for the links the
	// console shows (join links); "" uses the request's host.
	PublicURL string
	// Secure reports that browsers reach mailca over HTTPS (mailca serves
	// TLS, or a proxy in front of it does): the session cookie is named
	// "__Host-mailca_session" and marked Secure, and responses carry
	// Strict-Transport-Security.
	Secure bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client, for the login throttle and the audit log (see
	// clientip.Addr); nil trusts none.
	TrustedProxies []netip.Prefix
	// AfterSetup, if not nil, is called when the first administrator's
	// account is made (so that serve removes the setup link's file).
	AfterSetup func()
	// Logger receives errors; nil discards them. Tokens, passwords and form
	// values are never logged.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SpoolDir keeps the uploaded CSV files while they are imported
	// (created 0700; serve uses <data dir>/spool); "" means os.TempDir.
	SpoolDir string
}

// Store is the read queries the console needs.
type Store interface {
	dashboardStore
	auditStore
	pageStore
}

// DevMailbox is the store of emails kept instead of sent when no SMTP
// server is configured. It mirrors web.DevMailbox (console cannot import
// package web, which mounts it).
type DevMailbox interface {
	// List returns up to limit messages, newest first.
	List(ctx context.Context, limit int) ([]DevMessage, error)
	// Get returns one message; an error of kind errs.NotFound (or a nil
	// message) when there is none.
	Get(ctx context.Context, id int64) (*DevMessage, error)
}

// DevMessage is one email as rendered for the development mailbox.
type DevMessage struct {
	ID          int64
	To, Subject string
	Text, HTML  string
	Created     time.Time
	State       string
}

// MailSettings is the outgoing mail configuration as the mail settings page
// shows it. It never holds the SMTP password.
type MailSettings struct {
	// Host and Port of the SMTP server; Host "" means none is configured
	// (mail goes to the development mailbox).
	Host string
	Port int
	// TLS is the connection mode: "starttls", "tls" or "none".
	TLS string
	// From is the sender address of every email.
	From string
}

// Console serves the RA Management Console.
type Console struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	views map[string]*template.Template
	mux   *http.ServeMux
	table []Route // every registered route, in order

	// The background CSV imports (startImport): Close waits for them, and
	// cancels them through stop at its deadline.
	importMu sync.Mutex
	closing  bool          // Close was called: no more imports
	closed   chan struct{} // closed when closing is set
	imports  sync.WaitGroup
	stop     context.Context
	stopAll  context.CancelCauseFunc
}

// Route is one registered route of the console and the permission it
// needs; Perm is 0 for the pages reachable without a session (login, join,
// static files).
type Route struct {
	Pattern string
	Perm    auth.Permission
}

// New returns a console; it fails when the configuration lacks a required
// part or a template does not parse.
func New(cfg Config) (*Console, error) {
	if cfg.Auth == nil || cfg.Enrol == nil || cfg.Store == nil {
		return nil, errors.New("console: config needs Auth, Enrol and Store")
	}
	c := &Console{cfg: cfg, log: cfg.Logger, now: cfg.Now, mux: http.NewServeMux()}
	c.stop, c.stopAll = context.WithCancelCause(context.Background())
	c.closed = make(chan struct{})
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.integrationDefaults()
	var err error
	if c.views, err = parseViews(); err != nil {
		return nil, err
	}
	c.routes(c.mux)
	return c, nil
}

// Handler returns the handler of every path under /console/, with the
// console's security headers. Mount it at "/console/" without stripping
// the prefix.
func (c *Console) Handler() http.Handler { return handler{c} }

// handler is the console's http.Handler; Route lets the server's request
// log name the console's route pattern instead of "/console/".
type handler struct{ c *Console }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.c.headers(w)
	h.c.mux.ServeHTTP(w, r)
}

// Route returns the pattern of the console route r matches ("GET
// /console/join/{token}"), never its path; "" when none does.
func (h handler) Route(r *http.Request) string {
	_, p := h.c.mux.Handler(r)
	return p
}
