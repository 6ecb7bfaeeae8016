// Package web is mailca's HTTP server: the middleware every response passes, the route table and the development mailbox.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/web/enrolment"
	"github.com/mailca/mailca/internal/web/pki"
)

// Config configures the server. Only Enrol is required.
type Config struct {
	// Enrol runs the enrolment process.
	Enrol *enrol.Service
	// Mailbox is the development mailbox, shown at /dev/mailbox to
	// loopback clients. Set it only when no SMTP server is configured;
	// nil turns the pages off.
	Mailbox DevMailbox
	// TemplateDir is the data directory's "templates" folder, where an
	// organisation overrides the pages of a template set (see
	// docs/restyling.md). It need not exist; "" means no overrides.
	TemplateDir string
	// Logger receives the request log and errors; nil discards them.
	// Tokens, passwords and form values are never logged.
	Logger *slog.Logger
	// ChainPEM is the issuing chain offered at /ca/chain.pem.
	ChainPEM []byte
	// PKI serves CRLs, OCSP and CA certificates; nil leaves them out.
	PKI *pki.Handler
	// Ready lists what GET /readyz checks; nil leaves /readyz out.
	// GET /healthz is always there.
	Ready []ReadyCheck
	// Metrics serves GET /metrics; nil leaves it out.
	Metrics http.Handler
	// Requests is told of every request, for latency metrics; nil means
	// no one is.
	Requests RequestObserver
	// Console is the RA Management Console (internal/web/console), served
	// under /console/; nil leaves it out.
	Console http.Handler
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client in the audit log (see clientip.Addr); nil trusts
	// none, and the connection's address is the client's.
	TrustedProxies []netip.Prefix
	// API is the integration API (internal/web/api), served under
	// /api/v1/; nil leaves it out. Its clients send no Origin or
	// Sec-Fetch-Site header, so cross-origin protection lets them through.
	API http.Handler
}

// DevMailbox is the store of emails kept instead of sent when no SMTP
// server is configured.
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

// New returns the server's handler: the routes of routes.go behind the
// middleware (request log, security headers, panic recovery, cross-origin
// protection). It fails when a template is missing or does not parse.
func New(cfg Config) (http.Handler, error) {
	if cfg.Enrol == nil {
		return nil, errors.New("web: config needs an enrol.Service")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	enr, err := enrolment.New(enrolment.Config{Enrol: cfg.Enrol, TemplateDir: cfg.TemplateDir, Logger: log, ChainPEM: cfg.ChainPEM})
	if err != nil {
		return nil, err
	}
	var dev *devMailbox
	if cfg.Mailbox != nil {
		if dev, err = newDevMailbox(cfg.Mailbox, log, enr.NotFound); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	routes(mux, enr, dev, cfg.PKI, &ops{ready: cfg.Ready, metrics: cfg.Metrics, log: log})
	if cfg.Console != nil {
		mux.Handle("/console/", cfg.Console) // its own routes, sessions and headers
	}
	if cfg.API != nil {
		mux.Handle("/api/v1/", cfg.API) // its own routes, keys and problem responses
	}

	// Every POST changes state, so every POST must come from our own pages.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enr.RenderError(w, r, http.StatusForbidden, "Request refused",
			"this form was sent from another site, so it was refused; open the page again from your email and send it from there")
	}))
	var h http.Handler = cop.Handler(mux)
	if cfg.PKI != nil {
		h = cfg.PKI.KeepOCSPPaths(h)
	}
	h = recordOrigin(h, cfg.TrustedProxies)
	h = recoverPanics(h, mux, log)
	h = securityHeaders(h)
	h = observeRequests(h, mux, cfg.Requests)
	h = logRequests(h, mux, log)
	return h, nil
}
