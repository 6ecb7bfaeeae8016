// Package pki serves what relying parties fetch about certificates: CRLs, OCSP responses and CA certificates.
package pki

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/ca"
)

// CRLs returns the current CRL of an issuer; *ca.CRLPublisher is one.
type CRLs interface {
	// CurrentCRL returns the CRL to serve for the issuer with this ID,
	// or ca.ErrUnknownIssuer.
	CurrentCRL(ctx context.Context, issuerID string) (*ca.CRL, error)
}

// Responder answers OCSP requests; *ca.OCSPResponder is one.
type Responder interface {
	// Respond answers a DER request; it always returns a response, an
	// OCSP error response when the request cannot be answered.
	Respond(ctx context.Context, req []byte) *ca.OCSPResponse
}

// Config configures a Handler. Every field may be nil or empty; what is
// missing is answered with 404.
type Config struct {
	CRLs CRLs
	OCSP Responder
	// CACerts are served at /ca/<id>.crt, where id is the hexadecimal of
	// the first eight bytes of each one's subject key identifier (as
	// ca.Issuer.ID): the issuing CA, whose URL is in every certificate's
	// caIssuers, and its chain.
	CACerts []*x509.Certificate
	// StaticCRLs are CRLs signed elsewhere (the offline root's), served at
	// /crl/<id>.crl for issuers CRLs does not know, by the same ID rule.
	StaticCRLs []*x509.RevocationList
	Now        func() time.Time // nil means time.Now
	Logger     *slog.Logger     // nil discards
}

// Handler serves the PKI routes; see internal/web/routes.go.
type Handler struct {
	static map[string]*x509.RevocationList // ID of the signer -> CRL
	crls   CRLs
	ocsp   Responder
	certs  map[string][]byte // ID -> DER
	now    func() time.Time
	log    *slog.Logger
}

// New returns the Handler for cfg.
func New(cfg Config) *Handler {
	h := &Handler{crls: cfg.CRLs, ocsp: cfg.OCSP, certs: map[string][]byte{}, static: map[string]*x509.RevocationList{}, now: cfg.Now, log: cfg.Logger}
	for _, c := range cfg.StaticCRLs {
		if len(c.AuthorityKeyId) >= 8 {
			h.static[hex.EncodeToString(c.AuthorityKeyId[:8])] = c
		}
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range cfg.CACerts {
		if len(c.SubjectKeyId) >= 8 {
			h.certs[hex.EncodeToString(c.SubjectKeyId[:8])] = c.Raw
		}
	}
	return h
}

// notFound answers 404 in plain text: these URLs are read by programs.
func notFound(w http.ResponseWriter) {
	http.Error(w, "not found", http.StatusNotFound)
}

// cacheFor sets the caching headers of a response that may be kept for
// maxAge: public, so that a proxy or CDN may hold it too.
func cacheFor(w http.ResponseWriter, now time.Time, maxAge time.Duration) {
	secs := max(int64(maxAge/time.Second), 0)
	w.Header().Set("Cache-Control", "public, max-age="+strconv.FormatInt(secs, 10)+", no-transform")
	w.Header().Set("Expires", now.Add(time.Duration(secs)*time.Second).UTC().Format(http.TimeFormat))
}

// fileID returns the ID in a file name of the form <id><ext>.
func fileID(r *http.Request, ext string) (string, bool) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ext)
	return id, ok && id != ""
}

// CACert serves a CA certificate in DER.
//
// Pattern: GET /ca/{file}, for file <id>.crt.
func (h *Handler) CACert(w http.ResponseWriter, r *http.Request) {
	id, ok := fileID(r, ".crt")
	der := h.certs[id]
	if !ok || der == nil {
		notFound(w)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	cacheFor(w, h.now(), 24*time.Hour)
	w.Write(der)
}

// internalError logs err and answers 500 without its detail.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "pki: request failed", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}
