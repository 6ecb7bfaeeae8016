// Package api serves the integration API under /api/v1: JSON over the same enrolment functions as the console and the command line, for callers holding an API key.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/enrol"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Config configures the API handler. Enrol, Keys and Store are required.
type Config struct {
	Enrol *enrol.Service
	Keys  *apikey.Service
	Store Store
	// PublicURL is the origin of the referral links the API mints.
	PublicURL string
	// ChainPEM is the issuing chain, served with each certificate's chain.
	ChainPEM []byte
	// Logger receives errors; nil discards them. Keys and link tokens are
	// never logged.
	Logger *slog.Logger
	// Rate and Burst limit each key: Rate requests a second on average,
	// Burst at once. Defaults 10 and 50.
	Rate  float64
	Burst int
	// MaxBatchBytes bounds the body of a batch invitation; default 64 MiB.
	MaxBatchBytes int64
	// SpoolDir keeps the body of a batch invitation while it is imported
	// (created 0700, the file 0600; serve uses <data dir>/spool, which it
	// cleans at start); "" means os.TempDir.
	SpoolDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the read side the API needs beyond enrol.Service.
type Store interface {
	// EventsAfter returns up to limit audit events with a sequence number
	// above after, oldest first.
	EventsAfter(ctx context.Context, after int64, limit int) ([]audit.Record, error)
	// ObjectEvents returns the audit events about any of objects (exact
	// match), oldest first, at most limit.
	ObjectEvents(ctx context.Context, objects []string, limit int) ([]audit.Record, error)
	// Certificates returns issued certificates that q selects, newest
	// first, without their DER.
	Certificates(ctx context.Context, q CertificateQuery) ([]CertificateInfo, error)
	// IssuedCertificate returns one issued certificate with its DER, or an error
	// of kind errs.NotFound.
	IssuedCertificate(ctx context.Context, serial string) (*CertificateInfo, error)
	// Audit appends one audit event, for actions of the API that change
	// nothing else in the database (minting a referral link).
	Audit(ctx context.Context, e enrol.Event) error
}

// CertificateQuery selects certificates. Before is a keyset cursor.
type CertificateQuery struct {
	Mailbox  string   // exact mailbox
	Serial   string   // exact serial, lower-case hex
	Policies []string // only certificates of enrolments under these; empty: any
	State    string   // "", "valid", "revoked" or "expired", at Now
	Now      time.Time
	Before   int64
	Limit    int
}

// CertificateInfo is an issued certificate as the API shows it.
type CertificateInfo struct {
	Cursor      int64 // keyset position
	Serial      string
	Mailbox     string
	Profile     string
	NotBefore   time.Time
	NotAfter    time.Time
	IssuedAt    time.Time
	RevokedAt   time.Time // zero unless revoked
	Reason      string    // revocation reason name
	EnrolmentID int64     // 0 when issued outside enrolment
	Policy      string    // "" when issued outside enrolment
	DER         []byte    // only from Certificate
}

type server struct {
	enrol   *enrol.Service
	keys    *apikey.Service
	store   Store
	public  string
	chain   []byte
	log     *slog.Logger
	limit   *limiter
	maxBody int64
	spool   string
	now     func() time.Time
	doc     []byte
}

// New returns the API handler, to be mounted at Prefix+"/". It fails when
// a required part of cfg is missing.
func New(cfg Config) (http.Handler, error) {
	if cfg.Enrol == nil || cfg.Keys == nil || cfg.Store == nil {
		return nil, errors.New("api: config needs Enrol, Keys and Store")
	}
	s := &server{enrol: cfg.Enrol, keys: cfg.Keys, store: cfg.Store, public: strings.TrimRight(cfg.PublicURL, "/"),
		chain: cfg.ChainPEM, log: cfg.Logger, maxBody: cfg.MaxBatchBytes, spool: cfg.SpoolDir, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	rate, burst := cfg.Rate, cfg.Burst
	if rate <= 0 {
		rate = 10
	}
	if burst <= 0 {
		burst = 50
	}
	s.limit = newLimiter(rate, burst)
	if s.maxBody <= 0 {
		s.maxBody = 64 << 20
	}
	doc, err := Document()
	if err != nil {
		return nil, err
	}
	s.doc = doc
	mux := http.NewServeMux()
	for _, rt := range routeTable() {
		mux.Handle(rt.Method+" "+Prefix+rt.Path, s.wrap(rt))
	}
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		// No route has this path and method; if another method has the
		// path, the answer is 405 with the methods that do.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			c := r.Clone(r.Context())
			c.Method = m
			if _, pattern := mux.Handler(c); pattern != Prefix+"/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, problem(http.StatusMethodNotAllowed, KindMethod, "%s is not allowed here; use %s", r.Method, strings.Join(allow, " or ")))
			return
		}
		writeProblem(w, problem(http.StatusNotFound, KindNotFound, "no API route %s %s", r.Method, r.URL.Path))
	})
	return mux, nil
}

// handlerFunc serves one route for an authenticated key (nil for the
// routes that need none). An error becomes a problem response.
type handlerFunc func(s *server, w http.ResponseWriter, r *http.Request, k *apikey.Key) error

// wrap authenticates, checks the scope, applies the rate limit and turns
// errors into problems.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var k *apikey.Key
		if rt.Scope != "" {
			var p *Problem
			k, p = s.authenticate(r)
			if p == nil && !k.Allows(rt.Scope) {
				p = problem(http.StatusForbidden, KindScope, "this key lacks the scope %s", rt.Scope)
			}
			if p == nil {
				if ok, wait := s.limit.take(k.ID, s.now()); !ok {
					retryAfter(w, wait)
					p = problem(http.StatusTooManyRequests, KindRateLimited, "too many requests with this key; retry later")
				}
			}
			if p != nil {
				writeProblem(w, p)
				return
			}
		}
		err := checkQuery(rt, r)
		if err == nil && k != nil && rt.Method == http.MethodGet {
			err = s.auditRead(r, rt, k)
		}
		if err == nil {
			err = rt.handle(s, w, r, k)
		}
		if err != nil {
			p := toProblem(err)
			if p.Status >= 500 {
				s.log.Error("api", "route", rt.Method+" "+rt.Path, "err", err)
			}
			writeProblem(w, p)
		}
	})
}

// auditRead records that key k read through route rt: every call is
// audited with the key's identity, reads here (before anything is read,
// so that a read that cannot be recorded does not happen) and changes by
// the domain functions that make them. The path holds IDs and serials,
// never a secret.
func (s *server) auditRead(r *http.Request, rt route, k *apikey.Key) error {
	return s.store.Audit(r.Context(), enrol.Event{Actor: k.Actor(), Action: ReadAction, Object: "api:" + rt.Path, Detail: r.Method + " " + r.URL.Path})
}

// ReadAction is the audit action of a read through the API. The events
// endpoint leaves these out, so that a client polling it does not read
// its own polls back.
const ReadAction = "api.read"

func (s *server) authenticate(r *http.Request) (*apikey.Key, *Problem) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" { // the scheme is case-insensitive (RFC 9110, 11.1)
		return nil, problem(http.StatusUnauthorized, KindUnauthorized, "send an API key as Authorization: Bearer mca_...")
	}
	k, err := s.keys.Authenticate(r.Context(), strings.TrimSpace(token))
	if errors.Is(err, apikey.ErrUnauthenticated) {
		return nil, problem(http.StatusUnauthorized, KindUnauthorized, "the API key is unknown, revoked or expired")
	}
	if err != nil {
		s.log.Error("api: authenticating", "err", err)
		return nil, problem(http.StatusInternalServerError, KindInternal, "internal error")
	}
	return k, nil
}

// checkPolicy refuses a key that may not act on policy.
func checkPolicy(k *apikey.Key, policy string) error {
	if k.AllowsPolicy(policy) {
		return nil
	}
	if policy == "" {
		return problem(http.StatusForbidden, KindPolicy, "this key is limited to policies %s; the resource belongs to none", strings.Join(k.Policies, ", "))
	}
	return problem(http.StatusForbidden, KindPolicy, "this key may not act on policy %s", policy)
}

// jsonLimit bounds every JSON body but a batch.
const jsonLimit = 64 << 10

// decode reads one JSON value of r's body into v: the body must be
// application/json, at most jsonLimit bytes, one value, with no member v
// does not have. Mistakes become problems naming the member.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := wantJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, jsonLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeProblem(err)
		}
		return problem(http.StatusBadRequest, KindMalformed, "the body holds more than one JSON value")
	}
	return nil
}

func wantJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	if strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		return problem(http.StatusUnsupportedMediaType, KindMediaType, "send the body as application/json")
	}
	return nil
}

// decodeProblem explains a json decoding error.
func decodeProblem(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return problem(http.StatusRequestEntityTooLarge, KindTooLarge, "the body exceeds %d bytes", mbe.Limit)
	case errors.As(err, &se):
		return problem(http.StatusBadRequest, KindMalformed, "the body is not valid JSON (at byte %d)", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return problem(http.StatusBadRequest, KindMalformed, "the body is empty or cut short")
	case errors.As(err, &te):
		p := problem(http.StatusBadRequest, KindMalformed, "a member has the wrong type")
		p.Errors = []FieldProblem{{Pointer: "/" + strings.ReplaceAll(te.Field, ".", "/"), Detail: "must be " + jsonType(te.Type) + ", not " + te.Value}}
		return p
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		p := problem(http.StatusBadRequest, KindMalformed, "the body has a member this request does not take")
		p.Errors = []FieldProblem{{Pointer: "/" + name, Detail: "unknown member"}}
		return p
	}
	return problem(http.StatusBadRequest, KindMalformed, "the body is not the JSON this request takes")
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Uint, reflect.Uint64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("api: encoding response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return nil
}
