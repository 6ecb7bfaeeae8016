package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/mailbox"
)

type referralRequest struct {
	Policy    string `json:"policy"`
	Email     string `json:"email"`
	GivenName string `json:"given_name"`
	Surname   string `json:"surname"`
	// KeyID picks one of the policy's referral keys; "" means the first.
	KeyID string `json:"key_id"`
	// ExpiresIn is the link's lifetime in seconds: 60 to 86400, default 3600.
	ExpiresIn int `json:"expires_in"`
}

type referralJSON struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	ID        string    `json:"id"`
}

// createReferral signs a referral with one of the policy's referral keys,
// exactly as a referring site would (enrol.SignReferral); the link works
// once, until it expires.
func (s *server) createReferral(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	var req referralRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	var fields []FieldProblem
	if req.Policy == "" {
		fields = append(fields, FieldProblem{Pointer: "/policy", Detail: "required"})
	}
	if _, err := mailbox.Parse(req.Email); err != nil {
		fields = append(fields, FieldProblem{Pointer: "/email", Detail: "not a valid mailbox"})
	}
	if req.ExpiresIn == 0 {
		req.ExpiresIn = 3600
	}
	if req.ExpiresIn < 60 || req.ExpiresIn > 86400 {
		fields = append(fields, FieldProblem{Pointer: "/expires_in", Detail: "seconds from 60 to 86400"})
	}
	if len(fields) > 0 {
		p := problem(http.StatusUnprocessableEntity, KindInvalid, "the referral request has invalid members")
		p.Errors = fields
		return p
	}
	if err := checkPolicy(k, req.Policy); err != nil {
		return err
	}
	p, err := s.enrol.Policy(r.Context(), req.Policy)
	if err != nil {
		return err
	}
	if !p.Channels.Referral || len(p.ReferralKeys) == 0 {
		return problem(http.StatusConflict, KindConflict, "policy %s does not take referrals (no referral channel or keys)", p.Name)
	}
	key := p.ReferralKeys[0]
	if req.KeyID != "" {
		found := false
		for _, rk := range p.ReferralKeys {
			if rk.ID == req.KeyID {
				key, found = rk, true
			}
		}
		if !found {
			pr := problem(http.StatusUnprocessableEntity, KindInvalid, "policy %s has no referral key %q", p.Name, req.KeyID)
			pr.Errors = []FieldProblem{{Pointer: "/key_id", Detail: "not a referral key of the policy"}}
			return pr
		}
	}
	id := make([]byte, 16)
	rand.Read(id)
	now := s.now()
	ref := enrol.Referral{Email: req.Email, GivenName: req.GivenName, Surname: req.Surname, Policy: p.Name,
		IssuedAt: now.Unix(), Expires: now.Unix() + int64(req.ExpiresIn), ID: hex.EncodeToString(id)}
	token, err := enrol.SignReferral(ref, key)
	if err != nil {
		return err
	}
	// The link is a credential, so minting one is on the record; its use
	// is recorded by the enrolment it starts (detail "referral <id>").
	if err := s.store.Audit(r.Context(), enrol.Event{Actor: k.Actor(), Action: "referral.create", Object: "referral:" + ref.ID,
		Detail: "policy " + p.Name + ", key " + key.ID + ", for " + req.Email}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, referralJSON{URL: s.public + "/r?t=" + url.QueryEscape(token), ExpiresAt: time.Unix(ref.Expires, 0).UTC(), ID: ref.ID})
}
