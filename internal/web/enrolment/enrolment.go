// Package enrolment serves the public enrolment pages: the form, activation, download and open self-enrolment.
package enrolment

import (
	"errors"
	"log/slog"
	"time"

	"github.com/mailca/mailca/internal/enrol"
)

// Config configures a Handler.
type Config struct {
	// Enrol runs the enrolment process; required.
	Enrol *enrol.Service
	// TemplateDir holds organisation overrides, one folder per template
	// set: <TemplateDir>/<set>/form/<view>.html and
	// <TemplateDir>/<set>/static/style.css. It need not exist; "" means no
	// overrides.
	TemplateDir string
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// ChainPEM is the issuing chain offered at GET /ca/chain.pem; empty
	// means that page answers 404.
	ChainPEM []byte
}

// Handler serves the enrolment pages. Its methods are http.HandlerFunc
// values that the route table in package web registers; each documents the
// pattern and the path values it expects.
type Handler struct {
	svc   *enrol.Service
	log   *slog.Logger
	chain []byte
	views *engine
	// mailing limits the requests anyone can make that send email: open
	// self-enrolment and referral submissions (see limiter).
	mailing *limiter
}

// New parses the embedded templates, checks that every view exists and
// loads the organisation overrides found in cfg.TemplateDir (an override
// that does not parse is logged and the default used instead).
func New(cfg Config) (*Handler, error) {
	if cfg.Enrol == nil {
		return nil, errors.New("enrolment: config needs an enrol.Service")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	views, err := newEngine(cfg.TemplateDir, log)
	if err != nil {
		return nil, err
	}
	// Twenty mail-sending requests per network in ten minutes: plenty for an
	// office behind one address, useless for flooding mailboxes.
	return &Handler{svc: cfg.Enrol, log: log, chain: cfg.ChainPEM, views: views, mailing: newLimiter(20, 10*time.Minute, nil)}, nil
}
