package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP timing. The S/MIME BR (4.9.10) want responses valid for at least
// eight hours and at most ten days; a response is signed again once half
// its validity has passed, which for the default of four days meets their
// rule of a fresh response at most four days after thisUpdate.
const (
	DefaultOCSPValidity = 4 * 24 * time.Hour
	MinOCSPValidity     = 8 * time.Hour
	MaxOCSPValidity     = 10 * 24 * time.Hour
	// ResponderValidity is the lifetime of a delegated responder
	// certificate. One is made at start-up and renewed once less than two
	// response validities remain.
	ResponderValidity = 30 * 24 * time.Hour
	// DefaultOCSPCacheSize bounds the responses kept in memory.
	DefaultOCSPCacheSize = 200_000
)

// StatusStore is what the OCSP responder reads.
type StatusStore interface {
	// CertificateStatus returns what is known of the certificate with
	// this serial (SerialHex form), or ErrUnknownCertificate.
	CertificateStatus(ctx context.Context, serial string) (CertificateStatus, error)
}

// ResponderIssuer issues delegated OCSP responder certificates; *Engine
// is one.
type ResponderIssuer interface {
	IssueOCSPResponder(ctx context.Context, pub crypto.PublicKey, validity time.Duration) (*x509.Certificate, error)
}

// OCSPConfig configures an OCSPResponder.
type OCSPConfig struct {
	Issuer *Issuer
	Store  StatusStore
	// Delegate issues the responder's own certificate (RFC 6960 4.2.2.2),
	// so that the CA key signs once a month rather than for every
	// response; it must be an engine of the same issuer. Nil means the
	// issuing CA signs every response itself.
	Delegate ResponderIssuer
	// Validity is how long a response is valid; zero means
	// DefaultOCSPValidity.
	Validity  time.Duration
	CacheSize int              // zero means DefaultOCSPCacheSize
	Now       func() time.Time // nil means time.Now
	Rand      io.Reader        // nil means crypto/rand
}

// OCSPResponse is a DER OCSP response with what an HTTP server needs to
// say how long it may be cached.
type OCSPResponse struct {
	DER []byte
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown for a signed
	// response; for an error response (malformedRequest, unauthorized,
	// tryLater) it is -1 and the times are zero.
	Status     int
	ProducedAt time.Time
	ThisUpdate time.Time
	NextUpdate time.Time

	refreshAt time.Time // sign again from here on
}

// The unsigned error responses of RFC 6960 4.2.1.
var (
	respMalformed    = &OCSPResponse{DER: ocsp.MalformedRequestErrorResponse, Status: -1}
	respUnauthorized = &OCSPResponse{DER: ocsp.UnauthorizedErrorResponse, Status: -1}
	respTryLater     = &OCSPResponse{DER: ocsp.TryLaterErrorResponse, Status: -1}
)

// OCSPResponder answers OCSP requests (RFC 6960, with the RFC 5019
// profile) about the certificates of one issuing CA. Signed responses are
// kept in memory and signed again once half their validity has passed or
// when their certificate is revoked (Invalidate). It is safe for
// concurrent use.
//
// It answers "good" only for a certificate that was issued: a serial it
// does not know, or one that was reserved but never signed, gets
// "unknown". RFC 6960 2.2 would allow "revoked" for a serial never
// issued; "unknown" is chosen because a reserved serial may become a
// certificate a second later, and a cached "revoked" would then
// contradict it for days.
type OCSPResponder struct {
	issuer   *Issuer
	store    StatusStore
	delegate ResponderIssuer
	validity time.Duration
	maxCache int
	now      func() time.Time
	rand     io.Reader

	ids    map[crypto.Hash]certIDHashes // the issuer's name and key hashes per CertID hash
	signer atomic.Pointer[responderKey]
	renew  sync.Mutex

	mu    sync.RWMutex
	cache map[cacheKey]*OCSPResponse
}

type certIDHashes struct{ name, key []byte }

type cacheKey struct {
	hash   crypto.Hash
	serial string
}

// responderKey is what signs responses: the CA itself or a delegated
// responder.
type responderKey struct {
	signer  crypto.Signer
	cert    *x509.Certificate // the delegated responder's; nil when the CA signs
	byKey   []byte            // ResponderID: SHA-1 of the signer's public key (RFC 6960 4.2.1)
	hash    crypto.Hash
	algID   []byte
	certs   []asn1.RawValue
	expires time.Time // responses must not outlive it
}

// NewOCSPResponder returns an OCSPResponder for cfg. Call Start before
// the first request.
func NewOCSPResponder(cfg OCSPConfig) (*OCSPResponder, error) {
	if cfg.Issuer == nil || cfg.Store == nil {
		return nil, errors.New("ca: OCSP responder needs an issuer and a store")
	}
	r := &OCSPResponder{
		issuer: cfg.Issuer, store: cfg.Store, delegate: cfg.Delegate, validity: cfg.Validity,
		maxCache: cfg.CacheSize, now: cfg.Now, rand: cfg.Rand,
		ids: map[crypto.Hash]certIDHashes{}, cache: map[cacheKey]*OCSPResponse{},
	}
	if r.validity == 0 {
		r.validity = DefaultOCSPValidity
	}
	if r.validity < MinOCSPValidity || r.validity > MaxOCSPValidity {
		return nil, fmt.Errorf("ca: OCSP response validity %s, want between %s and %s", r.validity, MinOCSPValidity, MaxOCSPValidity)
	}
	if r.maxCache <= 0 {
		r.maxCache = DefaultOCSPCacheSize
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	keyBits, err := subjectPublicKeyBits(cfg.Issuer.Cert)
	if err != nil {
		return nil, err
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		nh, kh := h.New(), h.New()
		nh.Write(cfg.Issuer.Cert.RawSubject)
		kh.Write(keyBits)
		r.ids[h] = certIDHashes{name: nh.Sum(nil), key: kh.Sum(nil)}
	}
	return r, nil
}

// subjectPublicKeyBits returns the contents of a certificate's
// subjectPublicKey BIT STRING: what a CertID's issuerKeyHash hashes.
func subjectPublicKeyBits(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("ca: issuer public key: %w", err)
	}
	return spki.PublicKey.RightAlign(), nil
}

// Start readies the signing key: with a Delegate, it makes a new ECDSA
// P-256 key, which never leaves memory, and has its certificate issued.
func (r *OCSPResponder) Start(ctx context.Context) error {
	if r.delegate == nil {
		return r.useCA()
	}
	return r.renewResponder(ctx)
}

// Maintain renews the delegated responder certificate once less than two
// response validities remain, so that a response never outlives it.
func (r *OCSPResponder) Maintain(ctx context.Context) error {
	k := r.signer.Load()
	if k == nil {
		return r.Start(ctx)
	}
	if r.delegate == nil || r.now().Add(2*r.validity).Before(k.expires) {
		return nil
	}
	return r.renewResponder(ctx)
}

// ResponderCertificate returns the delegated responder certificate in use,
// or nil when the CA signs responses itself.
func (r *OCSPResponder) ResponderCertificate() *x509.Certificate {
	if k := r.signer.Load(); k != nil {
		return k.cert
	}
	return nil
}

func (r *OCSPResponder) useCA() error {
	hash, algID, err := signatureAlgorithmID(r.issuer.sigAlg)
	if err != nil {
		return err
	}
	k, err := newResponderKey(r.issuer.Signer, r.issuer.Cert, hash, algID)
	if err != nil {
		return err
	}
	k.cert, k.certs, k.expires = nil, nil, r.issuer.Cert.NotAfter
	r.signer.Store(k)
	return nil
}

func (r *OCSPResponder) renewResponder(ctx context.Context) error {
	r.renew.Lock()
	defer r.renew.Unlock()
	if k := r.signer.Load(); k != nil && k.cert != nil && r.now().Add(2*r.validity).Before(k.expires) {
		return nil // renewed meanwhile
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), r.rand)
	if err != nil {
		return fmt.Errorf("ca: OCSP responder key: %w", err)
	}
	cert, err := r.delegate.IssueOCSPResponder(ctx, key.Public(), ResponderValidity)
	if err != nil {
		return fmt.Errorf("ca: OCSP responder certificate: %w", err)
	}
	if !bytes.Equal(cert.RawIssuer, r.issuer.Cert.RawSubject) || cert.CheckSignatureFrom(r.issuer.Cert) != nil {
		return errors.New("ca: OCSP responder certificate is not from the responder's issuer")
	}
	hash, algID, err := signatureAlgorithmID(x509.ECDSAWithSHA256)
	if err != nil {
		return err
	}
	k, err := newResponderKey(key, cert, hash, algID)
	if err != nil {
		return err
	}
	r.signer.Store(k)
	return nil
}

func newResponderKey(s crypto.Signer, cert *x509.Certificate, hash crypto.Hash, algID []byte) (*responderKey, error) {
	bits, err := subjectPublicKeyBits(cert)
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(bits)
	return &responderKey{
		signer: s, cert: cert, byKey: h[:], hash: hash, algID: algID,
		certs: []asn1.RawValue{{FullBytes: cert.Raw}}, expires: cert.NotAfter,
	}, nil
}

// Respond answers the DER OCSP request req. It never fails: a request
// that does not parse (or is signed, or names no certificate) gets
// malformedRequest, one about another issuer gets unauthorized, and a
// store failure gets tryLater.
func (r *OCSPResponder) Respond(ctx context.Context, req []byte) *OCSPResponse {
	q, err := ocsp.ParseRequest(req)
	if err != nil || q.SerialNumber == nil {
		return respMalformed
	}
	ids, ok := r.ids[q.HashAlgorithm]
	if !ok || !bytes.Equal(ids.name, q.IssuerNameHash) || !bytes.Equal(ids.key, q.IssuerKeyHash) {
		return respUnauthorized
	}
	key := cacheKey{q.HashAlgorithm, SerialHex(q.SerialNumber)}
	now := r.now()
	r.mu.RLock()
	cached := r.cache[key]
	r.mu.RUnlock()
	if cached != nil && now.Before(cached.refreshAt) {
		return cached
	}

	st, known, err := r.status(ctx, q.SerialNumber, key.serial)
	if err != nil {
		return respTryLater
	}
	resp, err := r.sign(q, st, known, now)
	if err != nil {
		return respTryLater
	}
	if resp.Status != ocsp.Unknown {
		// "unknown" is not kept: anyone can ask about any serial, and a
		// reserved one may be issued a moment later.
		r.store1(key, resp)
	}
	return resp
}

// status looks serial up. A serial mailca could never have made is
// unknown without asking the store.
func (r *OCSPResponder) status(ctx context.Context, serial *big.Int, hex string) (CertificateStatus, bool, error) {
	if serial.Sign() <= 0 || serial.BitLen() > 8*serialBytes {
		return CertificateStatus{}, false, nil
	}
	st, err := r.store.CertificateStatus(ctx, hex)
	if errors.Is(err, ErrUnknownCertificate) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	return st, st.Issued && st.IssuerID == r.issuer.ID, nil
}

// store1 caches resp, first making room by dropping arbitrary entries
// when the cache is full.
func (r *OCSPResponder) store1(key cacheKey, resp *OCSPResponse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= r.maxCache {
		drop := max(r.maxCache/100, 1)
		for k := range r.cache {
			delete(r.cache, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	r.cache[key] = resp
}

// Invalidate drops the cached responses about these serials (SerialHex
// form), so that the next request is answered from the store.
func (r *OCSPResponder) Invalidate(serials ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range serials {
		for h := range r.ids {
			delete(r.cache, cacheKey{h, s})
		}
	}
}

// Cached returns how many responses are cached.
func (r *OCSPResponder) Cached() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.cache)
}

// The OCSP response structures of RFC 6960 4.2.1, as x/crypto/ocsp has
// them. The responder encodes its own rather than call
// ocsp.CreateResponse, which reads the wall clock for producedAt and
// rounds it down to the minute, so that thisUpdate may come after
// producedAt.
type responseASN1 struct {
	Status   asn1.Enumerated
	Response responseBytes `asn1:"explicit,tag:0,optional"`
}

type responseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type basicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm asn1.RawValue
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type responseData struct {
	Version     int `asn1:"optional,default:0,explicit,tag:0"`
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []singleResponse
}

type singleResponse struct {
	CertID     certID
	Good       asn1.Flag   `asn1:"tag:0,optional"`
	Revoked    revokedInfo `asn1:"tag:1,optional"`
	Unknown    asn1.Flag   `asn1:"tag:2,optional"`
	ThisUpdate time.Time   `asn1:"generalized"`
	NextUpdate time.Time   `asn1:"generalized,explicit,tag:0,optional"`
}

type certID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

type revokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"` // left out for unspecified
}

var (
	oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	hashOIDs     = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
)

// sign makes the signed response to q.
func (r *OCSPResponder) sign(q *ocsp.Request, st CertificateStatus, known bool, now time.Time) (*OCSPResponse, error) {
	k := r.signer.Load()
	if k == nil {
		return nil, errors.New("ca: OCSP responder not started")
	}
	produced := now.UTC().Truncate(time.Second)
	next := produced.Add(r.validity)
	if next.After(k.expires) {
		next = k.expires
	}
	single := singleResponse{
		CertID: certID{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: hashOIDs[q.HashAlgorithm], Parameters: asn1.NullRawValue},
			NameHash:      r.ids[q.HashAlgorithm].name,
			IssuerKeyHash: r.ids[q.HashAlgorithm].key,
			SerialNumber:  q.SerialNumber,
		},
		ThisUpdate: produced,
		NextUpdate: next,
	}
	resp := &OCSPResponse{ProducedAt: produced, ThisUpdate: produced, NextUpdate: next}
	switch {
	case !known:
		single.Unknown, resp.Status = true, ocsp.Unknown
	case st.Revoked():
		single.Revoked = revokedInfo{RevocationTime: st.RevokedAt.UTC(), Reason: asn1.Enumerated(st.Reason)}
		resp.Status = ocsp.Revoked
	default:
		single.Good, resp.Status = true, ocsp.Good
	}
	tbs, err := asn1.Marshal(responseData{
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: mustOctetString(k.byKey)},
		ProducedAt:  produced,
		Responses:   []singleResponse{single},
	})
	if err != nil {
		return nil, err
	}
	sig, err := crypto.SignMessage(k.signer, r.rand, tbs, k.hash)
	if err != nil {
		return nil, fmt.Errorf("ca: signing OCSP response: %w", err)
	}
	basic, err := asn1.Marshal(basicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: asn1.RawValue{FullBytes: k.algID},
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
		Certificates:       k.certs,
	})
	if err != nil {
		return nil, err
	}
	resp.DER, err = asn1.Marshal(responseASN1{Status: asn1.Enumerated(ocsp.Success), Response: responseBytes{ResponseType: oidOCSPBasic, Response: basic}})
	if err != nil {
		return nil, err
	}
	resp.refreshAt = produced.Add(next.Sub(produced) / 2)
	return resp, nil
}

func mustOctetString(b []byte) []byte {
	der, err := asn1.Marshal(b)
	if err != nil {
		panic(err) // a byte slice always marshals
	}
	return der
}
