package pki

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/crypto/ocsp"

	"github.com/mailca/mailca/internal/ca"
)

// maxOCSPRequest bounds a request. One names a single certificate in a few
// hundred bytes; anything longer is refused as malformed unread.
const maxOCSPRequest = 10 << 10

// ocspGetPrefix is the path of GET requests: the base64 request follows.
const ocspGetPrefix = "/ocsp/"

var malformed = &ca.OCSPResponse{DER: ocsp.MalformedRequestErrorResponse, Status: -1}

// OCSPPost answers an OCSP request sent as the body of a POST (RFC 6960
// appendix A.1). A body that is too long, unreadable or not a request
// gets the OCSP response malformedRequest, with HTTP status 200 as for
// every OCSP answer.
//
// Pattern: POST /ocsp.
func (h *Handler) OCSPPost(w http.ResponseWriter, r *http.Request) {
	if h.ocsp == nil {
		notFound(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOCSPRequest))
	if err != nil {
		h.writeOCSP(w, malformed)
		return
	}
	h.writeOCSP(w, h.ocsp.Respond(r.Context(), body))
}

// OCSPGet answers an OCSP request sent in the path of a GET, base64
// encoded and then URL-encoded (RFC 5019 5, RFC 6960 appendix A.1). The
// unpadded and URL-safe forms of base64 are accepted too.
//
// Pattern: GET /ocsp/{request...}. The path is read unescaped from the
// URL, not from the pattern: see KeepOCSPPaths.
func (h *Handler) OCSPGet(w http.ResponseWriter, r *http.Request) {
	if h.ocsp == nil {
		notFound(w)
		return
	}
	enc, ok := strings.CutPrefix(r.URL.Path, ocspGetPrefix)
	if !ok || len(enc) > maxOCSPRequest*4/3+4 {
		h.writeOCSP(w, malformed)
		return
	}
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if req, err := e.DecodeString(enc); err == nil {
			h.writeOCSP(w, h.ocsp.Respond(r.Context(), req))
			return
		}
	}
	h.writeOCSP(w, malformed)
}

// KeepOCSPPaths sends GET requests for /ocsp/... to OCSPGet before next
// (the ServeMux) sees them. Base64 holds "/", so a request may contain
// "//", and the ServeMux would answer it with a redirect to the cleaned
// path, which no OCSP client follows and which names another request.
func (h *Handler) KeepOCSPPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.HasPrefix(r.URL.Path, ocspGetPrefix) {
			h.OCSPGet(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeOCSP writes resp with the headers of RFC 5019 6.2. A signed
// response may be cached until the responder would sign it again (half its
// validity), never past nextUpdate; error responses are not cached.
func (h *Handler) writeOCSP(w http.ResponseWriter, resp *ca.OCSPResponse) {
	hd := w.Header()
	hd.Set("Content-Type", "application/ocsp-response")
	hd.Set("Content-Length", strconv.Itoa(len(resp.DER)))
	if resp.Status < 0 {
		hd.Set("Cache-Control", "no-store")
	} else {
		now := h.now()
		half := resp.ThisUpdate.Add(resp.NextUpdate.Sub(resp.ThisUpdate) / 2)
		cacheFor(w, now, min(resp.NextUpdate.Sub(now), half.Sub(now)))
		hd.Set("Last-Modified", resp.ProducedAt.UTC().Format(http.TimeFormat))
	}
	w.Write(resp.DER)
}
