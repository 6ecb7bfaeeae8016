package enrol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Referral is what a referring site asserts about a person: the claims of
// a compact JWS (RFC 7515) signed with HS256 under the site's key.
//
//	header  {"alg":"HS256","typ":"JWT","kid":"<site key id>"}
//	payload {"email":"...","given_name":"...","surname":"...","policy":"...",
//	         "iat":<unix>,"exp":<unix>,"jti":"<unique id>"}
//
// A referral is valid until exp (at most 24 hours after iat) and only once.
type Referral struct {
	Email     string `json:"email"`
	GivenName string `json:"given_name,omitempty"`
	Surname   string `json:"surname,omitempty"`
	Policy    string `json:"policy"`
	IssuedAt  int64  `json:"iat"`
	Expires   int64  `json:"exp"`
	ID        string `json:"jti"`
}

type jwsHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid"`
}

// maxReferral bounds a referral token; a real one is a few hundred bytes.
const maxReferral = 4096

var errBadReferral = errors.New("enrol: referral link is invalid or has expired")

// SignReferral returns a compact JWS for r under key. Referring sites can
// copy this: it is all a site needs to implement.
func SignReferral(r Referral, key ReferralKey) (string, error) {
	secret, err := base64.RawURLEncoding.DecodeString(key.Secret)
	if err != nil {
		return "", err
	}
	h, _ := json.Marshal(jwsHeader{Alg: "HS256", Typ: "JWT", Kid: key.ID})
	p, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// parseReferral checks the signature of a referral JWS against the keys of
// the policy it names and its validity at now. It does not check single use.
func parseReferral(token string, policyFor func(name string) (*Policy, error), now time.Time) (*Referral, *Policy, error) {
	if len(token) > maxReferral {
		return nil, nil, errBadReferral
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, errBadReferral
	}
	// Strict: a non-canonical encoding (other unused bits in the last
	// character) would let one signature travel as several tokens.
	b64 := base64.RawURLEncoding.Strict()
	hb, err1 := b64.DecodeString(parts[0])
	pb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, nil, errBadReferral
	}
	var h jwsHeader
	var r Referral
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &r) != nil {
		return nil, nil, errBadReferral
	}
	// Only HS256: never let the token choose a weaker algorithm or "none".
	if h.Alg != "HS256" {
		return nil, nil, errBadReferral
	}
	p, err := policyFor(r.Policy)
	if err != nil || !p.Channels.Referral {
		return nil, nil, errBadReferral
	}
	var secret []byte
	for _, k := range p.ReferralKeys {
		if k.ID == h.Kid {
			secret, _ = base64.RawURLEncoding.DecodeString(k.Secret)
		}
	}
	if secret == nil {
		return nil, nil, errBadReferral
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return nil, nil, errBadReferral
	}
	exp, iat := time.Unix(r.Expires, 0), time.Unix(r.IssuedAt, 0)
	if r.ID == "" || len(r.ID) > 128 || !now.Before(exp) || exp.Sub(iat) > 24*time.Hour || iat.After(now.Add(5*time.Minute)) {
		return nil, nil, errBadReferral
	}
	return &r, p, nil
}
