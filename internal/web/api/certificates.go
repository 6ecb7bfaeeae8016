package api

import (
	"encoding/pem"
	"net/http"
	"strconv"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/mailbox"
)

type certificateJSON struct {
	Serial           string     `json:"serial"`
	Mailbox          string     `json:"mailbox"`
	Profile          string     `json:"profile"`
	State            string     `json:"state"` // valid, revoked or expired
	NotBefore        time.Time  `json:"not_before"`
	NotAfter         time.Time  `json:"not_after"`
	IssuedAt         *time.Time `json:"issued_at,omitempty"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason string     `json:"revocation_reason,omitempty"`
	EnrolmentID      int64      `json:"enrolment_id,omitempty"`
	Policy           string     `json:"policy,omitempty"`
	PEM              string     `json:"pem,omitempty"`
}

func (s *server) toCertificate(c *CertificateInfo) certificateJSON {
	out := certificateJSON{Serial: c.Serial, Mailbox: c.Mailbox, Profile: c.Profile, State: "valid", NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		IssuedAt: optTime(c.IssuedAt), RevokedAt: optTime(c.RevokedAt), RevocationReason: c.Reason, EnrolmentID: c.EnrolmentID, Policy: c.Policy}
	switch {
	case !c.RevokedAt.IsZero():
		out.State = "revoked"
	case !s.now().Before(c.NotAfter):
		out.State = "expired"
	}
	if c.DER != nil {
		out.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	}
	return out
}

func (s *server) searchCertificates(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	q := r.URL.Query()
	cq := CertificateQuery{Mailbox: q.Get("mailbox"), State: q.Get("state"), Now: s.now(), Policies: k.Policies}
	if a, err := mailbox.Parse(cq.Mailbox); cq.Mailbox != "" && err == nil {
		cq.Mailbox = a.String() // the domain in the stored form
	}
	if v := q.Get("serial"); v != "" {
		n, err := ca.ParseSerial(v)
		if err != nil {
			p := problem(http.StatusBadRequest, KindInvalid, "invalid serial number")
			p.Errors = []FieldProblem{{Pointer: "?serial", Detail: "hexadecimal, with or without colons"}}
			return p
		}
		cq.Serial = ca.SerialHex(n)
	}
	switch cq.State {
	case "", "valid", "revoked", "expired":
	default:
		p := problem(http.StatusBadRequest, KindInvalid, "unknown state %q", cq.State)
		p.Errors = []FieldProblem{{Pointer: "?state", Detail: "valid, revoked or expired"}}
		return p
	}
	if pol := q.Get("policy"); pol != "" {
		if err := checkPolicy(k, pol); err != nil {
			return err
		}
		cq.Policies = []string{pol}
	}
	var err error
	if cq.Before, err = queryInt(r, "before", 0, 1, 1<<62); err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	cq.Limit = int(limit)
	cs, err := s.store.Certificates(r.Context(), cq)
	if err != nil {
		return err
	}
	page := pageJSON[certificateJSON]{Items: make([]certificateJSON, 0, len(cs))}
	for i := range cs {
		page.Items = append(page.Items, s.toCertificate(&cs[i]))
	}
	if len(cs) == cq.Limit {
		page.Next = &cs[len(cs)-1].Cursor
	}
	return writeJSON(w, http.StatusOK, page)
}

// certificateFor loads the certificate of the {serial} path value, if k
// may see it: keys limited to policies see only the certificates of
// their policies' enrolments, and get a 404 for the others.
func (s *server) certificateFor(r *http.Request, k *apikey.Key) (*CertificateInfo, error) {
	raw := r.PathValue("serial")
	n, err := ca.ParseSerial(raw)
	if err != nil {
		return nil, problem(http.StatusNotFound, KindNotFound, "no certificate %q", raw)
	}
	c, err := s.store.IssuedCertificate(r.Context(), ca.SerialHex(n))
	if errs.KindOf(err) == errs.NotFound || (err == nil && !k.AllowsPolicy(c.Policy)) {
		return nil, problem(http.StatusNotFound, KindNotFound, "no issued certificate has serial number %s", ca.SerialHex(n))
	}
	return c, err
}

func (s *server) getCertificate(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	c, err := s.certificateFor(r, k)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.toCertificate(c))
}

func (s *server) getCertificatePEM(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	c, err := s.certificateFor(r, k)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Serial+`.pem"`)
	return pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

func (s *server) getCertificateDER(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	c, err := s.certificateFor(r, k)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Serial+`.cer"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(c.DER)))
	_, err = w.Write(c.DER)
	return err
}

func (s *server) getCertificateChain(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	c, err := s.certificateFor(r, k)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Serial+`-chain.pem"`)
	pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
	_, err = w.Write(s.chain)
	return err
}

type revokeRequest struct {
	Reason string `json:"reason"`
}

type revocationJSON struct {
	Serial         string    `json:"serial"`
	Reason         string    `json:"reason"`
	RevokedAt      time.Time `json:"revoked_at"`
	AlreadyRevoked bool      `json:"already_revoked"`
	EnrolmentID    int64     `json:"enrolment_id,omitempty"`
	KeyBlocked     bool      `json:"key_blocked"`
}

func (s *server) revoke(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	var req revokeRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	reason, err := ca.ParseRevocationReason(req.Reason)
	if err != nil {
		p := problem(http.StatusUnprocessableEntity, KindInvalid, "%s", errs.Message(err))
		p.Errors = []FieldProblem{{Pointer: "/reason", Detail: "one of the allowed RFC 5280 reasons"}}
		return p
	}
	c, err := s.certificateFor(r, k)
	if err != nil {
		return err
	}
	res, err := s.enrol.Revoke(r.Context(), k.Actor(), c.Serial, reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, revocationJSON{Serial: res.Serial, Reason: res.Reason.String(), RevokedAt: res.RevokedAt.UTC(),
		AlreadyRevoked: res.AlreadyRevoked, EnrolmentID: res.EnrolmentID, KeyBlocked: res.KeyBlocked})
}
