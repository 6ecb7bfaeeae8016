package enrolment

import "net/http"

// Chain serves the issuing chain (PEM), which users of a CSR and mail
// programs that do not take the chain from a message need.
//
// Pattern: GET /ca/chain.pem.
func (h *Handler) Chain(w http.ResponseWriter, r *http.Request) {
	if len(h.chain) == 0 {
		h.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="chain.pem"`)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(h.chain)
}
