package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/enrol"
)

func (s *server) listPolicies(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	names, err := s.enrol.PolicyNames(r.Context())
	if err != nil {
		return err
	}
	type item struct {
		Name        string `json:"name"`
		Version     int    `json:"version"`
		Description string `json:"description,omitempty"`
	}
	out := struct {
		Items []item `json:"items"`
	}{Items: []item{}}
	for _, n := range names {
		if !k.AllowsPolicy(n) {
			continue
		}
		p, err := s.enrol.Policy(r.Context(), n)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, item{Name: p.Name, Version: p.Version, Description: p.Description})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *server) getPolicy(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	name := r.PathValue("name")
	if !k.AllowsPolicy(name) {
		return problem(http.StatusNotFound, KindNotFound, "no policy named %q", name)
	}
	p, err := s.enrol.Policy(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, publicPolicy(p))
}

// publicPolicy is p without its referral secrets: a key that reads
// policies must not be able to sign referrals.
func publicPolicy(p *enrol.Policy) map[string]any {
	cp := *p
	ids := make([]map[string]string, 0, len(cp.ReferralKeys))
	for _, rk := range cp.ReferralKeys {
		ids = append(ids, map[string]string{"id": rk.ID})
	}
	cp.ReferralKeys = nil
	b, _ := json.Marshal(&cp)
	var m map[string]any
	json.Unmarshal(b, &m)
	m["version"] = p.Version
	m["referral_keys"] = ids
	// Durations as seconds too, for programs.
	m["invitation_lifetime_seconds"] = int64(time.Duration(p.InvitationLifetime) / time.Second)
	m["activation_lifetime_seconds"] = int64(time.Duration(p.ActivationLifetime) / time.Second)
	return m
}
