package pki

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/mailca/mailca/internal/ca"
)

// CRL serves an issuer's current CRL, in DER. It may be cached until the
// CRL's nextUpdate, but no longer than half its validity, so that a new CRL
// reaches relying parties behind a cache within an interval.
//
// Pattern: GET /crl/{file}, for file <issuer ID>.crl.
func (h *Handler) CRL(w http.ResponseWriter, r *http.Request) {
	id, ok := fileID(r, ".crl")
	if !ok {
		notFound(w)
		return
	}
	if s, ok := h.static[id]; ok {
		h.serveCRL(w, r, id, &ca.CRL{DER: s.Raw, ThisUpdate: s.ThisUpdate, NextUpdate: s.NextUpdate, Number: s.Number.Int64()})
		return
	}
	if h.crls == nil {
		notFound(w)
		return
	}
	c, err := h.crls.CurrentCRL(r.Context(), id)
	if errors.Is(err, ca.ErrUnknownIssuer) {
		notFound(w)
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	h.serveCRL(w, r, id, c)
}

func (h *Handler) serveCRL(w http.ResponseWriter, r *http.Request, id string, c *ca.CRL) {
	now := h.now()
	w.Header().Set("Content-Type", "application/pkix-crl")
	cacheFor(w, now, min(c.NextUpdate.Sub(now), c.NextUpdate.Sub(c.ThisUpdate)/2))
	w.Header().Set("ETag", `"`+id+"-"+strconv.FormatInt(c.Number, 10)+`"`)
	// ServeContent answers conditional and range requests; a CRL of a
	// million entries is fifty megabytes.
	http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(c.DER))
}
