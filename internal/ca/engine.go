package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
)

// Validity limits (S/MIME BR 6.3.2).
const (
	DefaultValidity = 365 * 24 * time.Hour
	MaxValidity     = 825 * 24 * time.Hour
)

// Store records certificates around their signature. Its methods are the
// engine's only side effects; the store enforces uniqueness.
type Store interface {
	// ReserveSerial records a certificate about to be signed, with its
	// lint certificate. It returns ErrSerialTaken when the serial exists and
	// ErrKeyInUse when the key is in another live certificate or blocked.
	ReserveSerial(ctx context.Context, r Reservation) error
	// RefuseSerial marks a reservation whose lint failed. The serial stays
	// used; the key is free again.
	RefuseSerial(ctx context.Context, serial string, reason string) error
	// StoreCertificate records the signed certificate of a reservation.
	StoreCertificate(ctx context.Context, serial string, der []byte) error
}

// Reservation is what is known of a certificate before it is signed.
type Reservation struct {
	Serial    string // SerialHex form
	IssuerID  string
	Profile   string
	Mailbox   string
	SPKIHash  []byte // keys.SPKIHash of the subject key
	NotBefore time.Time
	NotAfter  time.Time
	LintDER   []byte // the candidate signed by the throwaway key
	Once      string // Request.Once
}

// Request asks for one subscriber certificate.
type Request struct {
	Profile   string           // a profile name; empty means DefaultProfile
	PublicKey crypto.PublicKey // the subscriber's key, checked by CheckSubscriberKey
	// Mailbox is the validated mailbox: the only name the certificate takes
	// from outside, and it must come from validation, never from a CSR.
	Mailbox mailbox.Address
	// GivenName and Surname name the person in a sponsor-validated
	// certificate; other profiles refuse them.
	GivenName, Surname string
	Validity           time.Duration // zero means DefaultValidity
	// Once, when set, allows at most one live certificate for this key: a
	// second request with the same Once is refused with AlreadyIssued. The
	// enrolment service passes the enrolment, so one approval can never
	// yield two certificates.
	Once string
}

// Config configures an Engine.
type Config struct {
	Issuer *Issuer
	Store  Store
	Linter *Linter // nil means NewLinter()
	// Organization and Country go into the subject of organization- and
	// sponsor-validated certificates; Country is optional (ISO 3166 alpha-2).
	Organization, Country string
	Now                   func() time.Time // nil means time.Now
	Rand                  io.Reader        // nil means crypto/rand
	// Observer counts issued and refused certificates; nil means none.
	Observer Observer
}

// Engine issues subscriber certificates under one issuer. It is safe for
// concurrent use.
type Engine struct {
	issuer *Issuer
	store  Store
	linter *Linter
	org    string
	cc     string
	now    func() time.Time
	rand   io.Reader
	obs    Observer
}

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Issuer == nil || cfg.Store == nil {
		return nil, errors.New("ca: engine needs an issuer and a store")
	}
	e := &Engine{issuer: cfg.Issuer, store: cfg.Store, linter: cfg.Linter, org: cfg.Organization, cc: cfg.Country, now: cfg.Now, rand: cfg.Rand}
	if e.linter == nil {
		l, err := NewLinter()
		if err != nil {
			return nil, err
		}
		e.linter = l
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.obs = cfg.Observer; e.obs == nil {
		e.obs = noObserver{}
	}
	if e.cc != "" && !isCountryCode(e.cc) {
		return nil, fmt.Errorf("ca: country %q is not an ISO 3166 alpha-2 code", e.cc)
	}
	return e, nil
}

// Issuer returns the engine's issuer.
func (e *Engine) Issuer() *Issuer { return e.issuer }

// Certificate is an issued certificate with the chain that completes it.
type Certificate struct {
	Cert  *x509.Certificate
	Chain []*x509.Certificate // issuing CA first, as Issuer.Chain follows
}

// Prepared is a certificate that has been built, reserved and linted, and
// may now be signed exactly once. Only Prepare makes one, so the real key
// can sign nothing that has not passed the linter.
type Prepared struct {
	mu       sync.Mutex
	redeemed bool

	serial  *big.Int
	lint    lintCert
	profile string // for the Observer
}

// Serial returns the serial number reserved for the certificate.
func (p *Prepared) Serial() *big.Int { return new(big.Int).Set(p.serial) }

// LintCertificate returns the DER of the lint certificate: identical to the
// certificate-to-be but for its signature, which is a throwaway key's.
func (p *Prepared) LintCertificate() []byte { return bytes.Clone(p.lint.der) }

// Issue prepares and signs one certificate. Every path that issues (command
// line, enrolment, API) calls Issue, or Prepare and Sign.
func (e *Engine) Issue(ctx context.Context, req Request) (*Certificate, error) {
	p, err := e.Prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	return e.Sign(ctx, p)
}

// Prepare builds the certificate for req, reserves its serial with the lint
// certificate in the store, and lints it. It returns a *RequestError when
// the request is wrong and a *LintError when the linter refuses; in neither
// case is anything signed by the real key.
func (e *Engine) Prepare(ctx context.Context, req Request) (*Prepared, error) {
	// 1. Build the template from the profile; every check of the request
	// happens here, before a serial is spent.
	tmpl, err := e.template(req)
	if err != nil {
		return nil, err
	}
	spki, err := keys.SPKIHash(req.PublicKey)
	if err != nil {
		return nil, &RequestError{Reason: WeakKey, Detail: err.Error()}
	}
	tmpl.SubjectKeyId = spki[:20] // RFC 7093 method 4: SHA-256 of the SPKI, leftmost 160 bits

	return e.reserveAndLint(ctx, tmpl, req.PublicKey, Reservation{
		IssuerID: e.issuer.ID,
		Profile:  req.profileName(),
		Mailbox:  req.Mailbox.String(),
		SPKIHash: spki,
		Once:     req.Once,
	})
}

// reserveAndLint does steps 2 and 3 of issuance for tmpl, whose subject
// key is pub: it picks a serial, signs the lint copy, stores both in the
// reservation r (whose serial, validity and lint certificate it fills), and
// lints. Every certificate the engine signs, subscriber or OCSP responder,
// passes through here.
func (e *Engine) reserveAndLint(ctx context.Context, tmpl *x509.Certificate, pub crypto.PublicKey, r Reservation) (*Prepared, error) {
	// 2. Pick a serial, sign the lint copy and store both before anything
	// else: a serial is never reused, even if this process dies now.
	var lc lintCert
	var err error
	for attempt := 0; ; attempt++ {
		tmpl.SerialNumber, err = newSerial(e.rand)
		if err != nil {
			return nil, err
		}
		lc, err = e.linter.lintCertificate(tmpl, e.issuer.Cert, pub)
		if err != nil {
			return nil, err
		}
		r.Serial, r.NotBefore, r.NotAfter, r.LintDER = SerialHex(tmpl.SerialNumber), tmpl.NotBefore, tmpl.NotAfter, lc.der
		err = e.store.ReserveSerial(ctx, r)
		if errors.Is(err, ErrSerialTaken) && attempt < 2 {
			continue
		}
		if errors.Is(err, ErrOnceTaken) {
			return nil, &RequestError{Reason: AlreadyIssued, Detail: "a certificate was already issued for this request"}
		}
		if errors.Is(err, ErrKeyInUse) {
			return nil, &RequestError{Reason: KeyReused, Detail: "this public key is in another certificate or blocked; generate a new key"}
		}
		if err != nil {
			return nil, fmt.Errorf("ca: reserving serial: %w", err)
		}
		break
	}

	// 3. Lint. Any warning or error refuses the certificate for good.
	if err := e.linter.Check(lc.der); err != nil {
		if rerr := e.store.RefuseSerial(ctx, SerialHex(tmpl.SerialNumber), err.Error()); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("ca: recording lint refusal: %w", rerr))
		}
		e.obs.LintRefused()
		return nil, err
	}
	return &Prepared{serial: tmpl.SerialNumber, lint: lc, profile: r.Profile}, nil
}

// Sign redeems p: it signs the prepared certificate with the issuer's key,
// checks that the result is the linted certificate, and stores it. A second
// Sign of the same p returns ErrTokenRedeemed and signs nothing.
func (e *Engine) Sign(ctx context.Context, p *Prepared) (*Certificate, error) {
	p.mu.Lock()
	if p.redeemed {
		p.mu.Unlock()
		return nil, ErrTokenRedeemed
	}
	p.redeemed = true
	p.mu.Unlock()

	// 4. Sign with the real key the very bytes that were linted, rather than
	// encode the template again and compare afterwards: the key never signs
	// anything else, and the encoding is not paid twice.
	tbs := p.lint.tbs
	sig, err := crypto.SignMessage(e.issuer.Signer, e.rand, tbs, p.lint.opts)
	if err != nil {
		return nil, fmt.Errorf("ca: signing: %w", err)
	}
	// As x509.CreateCertificate does, check the signature, so that a faulty
	// signer (an RSA fault, a confused HSM) cannot hand out a certificate
	// that does not verify.
	if err := e.issuer.Cert.CheckSignature(e.issuer.sigAlg, tbs, sig); err != nil {
		return nil, fmt.Errorf("ca: signature returned by the issuer's key is invalid: %w", err)
	}
	der, err := certificateDER(tbs, sig)
	if err != nil {
		return nil, fmt.Errorf("ca: signing: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: signed certificate does not parse: %w", err)
	}
	// The linted bytes are what was approved; anything else must not leave.
	if !bytes.Equal(cert.RawTBSCertificate, tbs) {
		return nil, errors.New("ca: signed certificate differs from the linted one; not storing it")
	}

	// 5. Store the certificate.
	if err := e.store.StoreCertificate(ctx, SerialHex(p.serial), der); err != nil {
		return nil, fmt.Errorf("ca: storing certificate %s: %w", SerialHex(p.serial), err)
	}
	e.obs.Issued(p.profile)
	return &Certificate{Cert: cert, Chain: append([]*x509.Certificate{e.issuer.Cert}, e.issuer.Chain...)}, nil
}

func (r Request) profileName() string {
	if r.Profile == "" {
		return DefaultProfile
	}
	return r.Profile
}

// template builds the certificate for req, without serial or key identifier.
func (e *Engine) template(req Request) (*x509.Certificate, error) {
	prof, err := ProfileByName(req.profileName())
	if err != nil {
		return nil, err
	}
	if req.PublicKey == nil {
		return nil, &RequestError{Reason: WeakKey, Detail: "no public key"}
	}
	if err := CheckSubscriberKey(req.PublicKey); err != nil {
		return nil, err
	}
	ku, err := keyUsage(req.PublicKey)
	if err != nil {
		return nil, err
	}
	addr := req.Mailbox.String()
	if req.Mailbox.LocalPart == "" || req.Mailbox.Domain == "" {
		return nil, &RequestError{Reason: BadMailbox, Detail: "no mailbox"}
	}
	if !req.Mailbox.IsASCII() {
		// RFC 9598 SmtpUTF8Mailbox needs an otherName SAN that some mail
		// clients still mishandle; refuse clearly rather than issue a
		// certificate that fails in the user's hands.
		return nil, &RequestError{Reason: BadMailbox, Detail: "mailboxes with non-ASCII local parts (RFC 9598) are not supported yet"}
	}

	validity := req.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	if validity < time.Hour || validity > MaxValidity {
		return nil, &RequestError{Reason: BadValidity, Detail: fmt.Sprintf("%s, want between 1 hour and 825 days", validity)}
	}
	notBefore := e.now().UTC().Truncate(time.Second)
	// RFC 5280 counts both ends, so the last second is validity-1s later.
	notAfter := notBefore.Add(validity - time.Second)
	if notAfter.After(e.issuer.Cert.NotAfter) {
		return nil, &RequestError{Reason: BadValidity, Detail: fmt.Sprintf("certificate would outlive its issuing CA (valid until %s)", e.issuer.Cert.NotAfter.UTC().Format(time.DateOnly))}
	}

	subject, err := e.subject(prof, req, addr)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		EmailAddresses:        []string{addr},
		Policies:              []x509.OID{prof.Policy},
		CRLDistributionPoints: []string{e.issuer.CRLURL},
		OCSPServer:            []string{e.issuer.OCSPURL},
		IssuingCertificateURL: []string{e.issuer.IssuerURL},
		SignatureAlgorithm:    e.issuer.sigAlg,
	}
	return tmpl, nil
}

// subject returns the DER subject for prof. The S/MIME BR (7.1.4.2) list
// per validation type which attributes may appear; this builds the usual
// ones and nothing the subscriber could use to claim more than was checked.
func (e *Engine) subject(prof Profile, req Request, addr string) ([]byte, error) {
	given, err := cleanName("given name", req.GivenName)
	if err != nil {
		return nil, err
	}
	surname, err := cleanName("surname", req.Surname)
	if err != nil {
		return nil, err
	}
	if (given != "" || surname != "") && prof.Validation != SponsorValidated {
		return nil, &RequestError{Reason: SubjectNotAllowed, Detail: fmt.Sprintf("profile %s does not carry a given name or surname; use a sponsor-validated profile", prof.Name)}
	}

	var attrs []rdn
	if prof.Validation != MailboxValidated {
		if e.org == "" {
			return nil, &RequestError{Reason: SubjectNotAllowed, Detail: fmt.Sprintf("profile %s needs the organisation name, which is not configured", prof.Name)}
		}
		if e.cc != "" {
			attrs = append(attrs, rdn{oidCountry, asn1.TagPrintableString, e.cc})
		}
		attrs = append(attrs, rdn{oidOrganization, asn1.TagUTF8String, e.org})
	}
	cn := addr
	if prof.Validation == SponsorValidated {
		if given != "" {
			attrs = append(attrs, rdn{oidGivenName, asn1.TagUTF8String, given})
		}
		if surname != "" {
			attrs = append(attrs, rdn{oidSurname, asn1.TagUTF8String, surname})
		}
		if full := strings.TrimSpace(given + " " + surname); full != "" && fitsLength(full, ubCommonName) {
			cn = full
		}
	}
	// commonName is optional in every profile; a mailbox too long for it
	// (ub-common-name is 64) stays in the SAN and emailAddress only.
	if fitsLength(cn, ubCommonName) {
		attrs = append(attrs, rdn{oidCommonName, asn1.TagUTF8String, cn})
	}
	if fitsLength(addr, ubEmailAddress) {
		attrs = append(attrs, rdn{oidEmailAddress, asn1.TagIA5String, addr})
	}
	return marshalName(attrs)
}

// cleanName checks a personal name for the subject: printable text of at
// most 64 characters, trimmed, with no control characters.
func cleanName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", &RequestError{Reason: SubjectNotAllowed, Detail: field + " is not valid UTF-8"}
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", &RequestError{Reason: SubjectNotAllowed, Detail: fmt.Sprintf("%s contains the control character %U", field, r)}
		}
	}
	if !fitsLength(s, ubCommonName) {
		return "", &RequestError{Reason: SubjectNotAllowed, Detail: fmt.Sprintf("%s is longer than %d characters", field, ubCommonName)}
	}
	return s, nil
}

func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
