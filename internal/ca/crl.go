package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// CRL timing. The S/MIME BR (4.9.7) want a new CRL at least every seven
// days with nextUpdate at most ten days after thisUpdate; a CRL is made
// every interval and is valid for two, so that a relying party that
// fetched one just before the next was due still holds a valid CRL if
// publishing stalls for a whole interval.
const (
	DefaultCRLInterval = time.Hour
	MinCRLInterval     = time.Minute
	MaxCRLInterval     = 7 * 24 * time.Hour
	MaxCRLValidity     = 10 * 24 * time.Hour
)

// CRLValidity returns how long a CRL made every interval is valid:
// twice the interval, but never more than MaxCRLValidity.
func CRLValidity(interval time.Duration) time.Duration {
	return min(2*interval, MaxCRLValidity)
}

// CheckCRLInterval returns an error unless interval is between
// MinCRLInterval and MaxCRLInterval.
func CheckCRLInterval(interval time.Duration) error {
	if interval < MinCRLInterval || interval > MaxCRLInterval {
		return fmt.Errorf("ca: CRL interval %s, want between %s and %s", interval, MinCRLInterval, MaxCRLInterval)
	}
	return nil
}

// CRL is a signed certificate revocation list of one issuing CA.
type CRL struct {
	IssuerID   string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	// RevocationSeq is the issuer's revocation sequence number the list
	// was read at: every revocation up to it is in the list, unless the
	// certificate had expired.
	RevocationSeq int64
	Entries       int
	DER           []byte // nil in the metadata a store returns without it
}

// RevokedEntry is one revoked certificate as a CRLStore reads it.
type RevokedEntry struct {
	// Serial is the SerialHex form, in a buffer the store may reuse after
	// the callback returns.
	Serial    []byte
	RevokedAt time.Time
	Reason    RevocationReason
}

// ErrNoCRL is returned by a CRLStore that holds no CRL for an issuer.
var ErrNoCRL = errors.New("ca: no CRL stored")

// CRLStore is the storage CRL publishing needs.
type CRLStore interface {
	// NextCRLNumber hands out the issuer's next CRL number: 1 the first
	// time, and ever after more than any number it returned before, even
	// across restarts and processes sharing the store.
	NextCRLNumber(ctx context.Context, issuerID string) (int64, error)
	// RevokedCertificates calls fn for each revoked certificate of the
	// issuer whose notAfter is not before notAfter, in any order, and
	// returns the issuer's revocation sequence number read in the same
	// snapshot. An error from fn stops the iteration and is returned.
	RevokedCertificates(ctx context.Context, issuerID string, notAfter time.Time, fn func(*RevokedEntry) error) (seq int64, err error)
	// RevocationSeq returns the issuer's revocation sequence number: it
	// grows by one with each revocation.
	RevocationSeq(ctx context.Context, issuerID string) (int64, error)
	// SaveCRL stores c as the issuer's newest CRL, unless a CRL with a
	// higher number is stored already.
	SaveCRL(ctx context.Context, c *CRL) error
	// LatestCRL returns the issuer's newest stored CRL, with its DER only
	// when withDER is set; ErrNoCRL when there is none.
	LatestCRL(ctx context.Context, issuerID string, withDER bool) (*CRL, error)
}

// CRLConfig configures a CRLPublisher.
type CRLConfig struct {
	Issuer *Issuer
	Store  CRLStore
	// Interval is how often a new CRL is made when nothing is revoked;
	// zero means DefaultCRLInterval. See CheckCRLInterval.
	Interval time.Duration
	Now      func() time.Time // nil means time.Now
	Rand     io.Reader        // nil means crypto/rand
}

// CRLPublisher makes, signs and keeps the full CRL of one issuing CA. It
// is safe for concurrent use.
type CRLPublisher struct {
	issuer   *Issuer
	store    CRLStore
	interval time.Duration
	now      func() time.Time
	rand     io.Reader

	mu  sync.Mutex // one generation at a time
	cur atomic.Pointer[CRL]
}

// NewCRLPublisher returns a CRLPublisher for cfg.
func NewCRLPublisher(cfg CRLConfig) (*CRLPublisher, error) {
	if cfg.Issuer == nil || cfg.Store == nil {
		return nil, errors.New("ca: CRL publisher needs an issuer and a store")
	}
	p := &CRLPublisher{issuer: cfg.Issuer, store: cfg.Store, interval: cfg.Interval, now: cfg.Now, rand: cfg.Rand}
	if p.interval == 0 {
		p.interval = DefaultCRLInterval
	}
	if err := CheckCRLInterval(p.interval); err != nil {
		return nil, err
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if _, _, err := signatureAlgorithmID(cfg.Issuer.sigAlg); err != nil {
		return nil, err
	}
	return p, nil
}

// Issuer returns the issuer whose CRL p publishes.
func (p *CRLPublisher) Issuer() *Issuer { return p.issuer }

// Interval returns how often p makes a new CRL.
func (p *CRLPublisher) Interval() time.Duration { return p.interval }

// Generate makes a new CRL, stores it and makes it current.
func (p *CRLPublisher) Generate(ctx context.Context) (*CRL, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.build(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.store.SaveCRL(ctx, c); err != nil {
		return nil, fmt.Errorf("ca: storing CRL %d: %w", c.Number, err)
	}
	p.adopt(c)
	return c, nil
}

// adopt makes c current unless a CRL with a higher number is.
func (p *CRLPublisher) adopt(c *CRL) {
	for {
		old := p.cur.Load()
		if old != nil && old.Number >= c.Number {
			return
		}
		if p.cur.CompareAndSwap(old, c) {
			return
		}
	}
}

// Current returns the CRL to serve: the newest this publisher made or
// loaded, else the newest stored, else a new one.
func (p *CRLPublisher) Current(ctx context.Context) (*CRL, error) {
	if c := p.cur.Load(); c != nil {
		return c, nil
	}
	c, err := p.store.LatestCRL(ctx, p.issuer.ID, true)
	if errors.Is(err, ErrNoCRL) {
		return p.Generate(ctx)
	}
	if err != nil {
		return nil, err
	}
	p.adopt(c)
	return p.cur.Load(), nil
}

// CurrentCRL returns Current for the issuer called issuerID, and
// ErrUnknownIssuer for any other.
func (p *CRLPublisher) CurrentCRL(ctx context.Context, issuerID string) (*CRL, error) {
	if issuerID != p.issuer.ID {
		return nil, ErrUnknownIssuer
	}
	return p.Current(ctx)
}

// Refresh brings the current CRL up to date. It adopts a newer CRL that
// another process stored, then makes a new one when there is none, when it
// lacks a revocation (the store's revocation sequence number has moved on),
// or when it is an interval old. It reports whether it made one.
func (p *CRLPublisher) Refresh(ctx context.Context) (*CRL, bool, error) {
	latest, err := p.store.LatestCRL(ctx, p.issuer.ID, false)
	if err != nil && !errors.Is(err, ErrNoCRL) {
		return nil, false, err
	}
	cur := p.cur.Load()
	if latest != nil && (cur == nil || latest.Number > cur.Number) {
		full, err := p.store.LatestCRL(ctx, p.issuer.ID, true)
		if err != nil {
			return nil, false, err
		}
		p.adopt(full)
		cur = p.cur.Load()
	}
	seq, err := p.store.RevocationSeq(ctx, p.issuer.ID)
	if err != nil {
		return nil, false, err
	}
	if cur != nil && cur.RevocationSeq >= seq && p.now().Before(cur.ThisUpdate.Add(p.interval)) {
		return cur, false, nil
	}
	c, err := p.Generate(ctx)
	return c, err == nil, err
}

// build makes and signs a new CRL without storing it.
func (p *CRLPublisher) build(ctx context.Context) (*CRL, error) {
	// 1. Take the number first: a number is never used twice, even when
	// this CRL is never published.
	number, err := p.store.NextCRLNumber(ctx, p.issuer.ID)
	if err != nil {
		return nil, fmt.Errorf("ca: allocating a CRL number: %w", err)
	}
	thisUpdate := p.now().UTC().Truncate(time.Second)
	c := &CRL{IssuerID: p.issuer.ID, Number: number, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(CRLValidity(p.interval))}

	// 2. Stream the revoked certificates into the list. A certificate
	// drops off the first CRL made after it expires (RFC 5280 3.3).
	enc, err := newCRLEncoder(p.issuer, c, p.sizeHint())
	if err != nil {
		return nil, err
	}
	c.RevocationSeq, err = p.store.RevokedCertificates(ctx, p.issuer.ID, thisUpdate, enc.add)
	if err != nil {
		return nil, fmt.Errorf("ca: reading revoked certificates: %w", err)
	}

	// 3. Sign, and check the signature as x509.CreateCertificate does, so
	// that a faulty signer cannot publish a list that does not verify.
	if c.DER, err = enc.finish(p.issuer, p.rand); err != nil {
		return nil, err
	}
	c.Entries = enc.n
	return c, nil
}

// sizeHint guesses the size of the next CRL from the current one, so that
// the buffer of a large list is allocated once rather than grown.
func (p *CRLPublisher) sizeHint() int {
	if c := p.cur.Load(); c != nil {
		return len(c.DER) + len(c.DER)/16 + 4096
	}
	return 4096
}

// The extensions of a CRL (RFC 5280 5.2) and of its entries (5.3).
var (
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
)

// crlEncoder writes a CertificateList (RFC 5280 5.1) as the revoked
// certificates arrive, in one buffer: x509.CreateRevocationList needs every
// entry as a struct with a big.Int first, and encodes through reflection,
// which for a million entries costs gigabytes and seconds.
//
// The buffer starts with room for what precedes the entries (the
// outer headers, version, algorithm, issuer and times); once the entries
// and their length are known, the headers are written into that room,
// right-aligned, so that the whole CertificateList ends up contiguous
// without copying the entries.
type crlEncoder struct {
	prefix []byte // version, signature, issuer, thisUpdate, nextUpdate
	exts   []byte // [0] crlExtensions
	room   int    // bytes reserved before the entries
	buf    []byte
	n      int
	hash   crypto.Hash
	algID  []byte
}

// maxSignatureBytes bounds a signature of an issuer key: 512 octets for
// RSA-4096, less for ECDSA.
const maxSignatureBytes = 512

// headerRoom bounds the bytes any DER header takes: tag and a length of
// up to four octets.
const headerRoom = 6

func newCRLEncoder(iss *Issuer, c *CRL, hint int) (*crlEncoder, error) {
	hash, algID, err := signatureAlgorithmID(iss.sigAlg)
	if err != nil {
		return nil, err
	}
	e := &crlEncoder{hash: hash, algID: algID}
	e.prefix = append(e.prefix, 0x02, 0x01, 0x01) // version v2
	e.prefix = append(e.prefix, algID...)
	e.prefix = append(e.prefix, iss.Cert.RawSubject...)
	e.prefix = appendTime(e.prefix, c.ThisUpdate)
	e.prefix = appendTime(e.prefix, c.NextUpdate)

	aki, err := asn1.Marshal(struct {
		ID []byte `asn1:"optional,tag:0"`
	}{iss.Cert.SubjectKeyId})
	if err != nil {
		return nil, err
	}
	num, err := asn1.Marshal(big.NewInt(c.Number))
	if err != nil {
		return nil, err
	}
	exts, err := asn1.Marshal([]pkix.Extension{{Id: oidAuthorityKeyID, Value: aki}, {Id: oidCRLNumber, Value: num}})
	if err != nil {
		return nil, err
	}
	e.exts = appendHeader(nil, 0xa0, len(exts))
	e.exts = append(e.exts, exts...)

	// Outer SEQUENCE, TBSCertList SEQUENCE, prefix, revokedCertificates SEQUENCE.
	e.room = 3*headerRoom + len(e.prefix)
	e.buf = make([]byte, e.room, e.room+max(hint, 1024))
	return e, nil
}

// reasonExtension is the entry extensions of a reason code (RFC 5280
// 5.3.1): Extensions { Extension { id-ce-cRLReasons, OCTET STRING {
// ENUMERATED code } } }; the last octet is the code.
var reasonExtension = [...]byte{0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x00}

// add appends one revokedCertificates entry. The reason code extension is
// left out for unspecified, as RFC 5280 5.3.1 recommends.
func (e *crlEncoder) add(r *RevokedEntry) error {
	var serial [serialBytes + 1]byte
	v, err := serialDER(serial[:], r.Serial)
	if err != nil {
		return err
	}
	if !r.Reason.Allowed() {
		return fmt.Errorf("ca: certificate %s revoked for %s, which a CRL may not carry", r.Serial, r.Reason)
	}
	var when [17]byte
	t := appendTime(when[:0], r.RevokedAt)
	n := 2 + len(v) + len(t)
	if r.Reason != ReasonUnspecified {
		n += len(reasonExtension)
	}
	e.buf = append(e.buf, 0x30, byte(n), 0x02, byte(len(v)))
	e.buf = append(e.buf, v...)
	e.buf = append(e.buf, t...)
	if r.Reason != ReasonUnspecified {
		e.buf = append(e.buf, reasonExtension[:len(reasonExtension)-1]...)
		e.buf = append(e.buf, byte(r.Reason))
	}
	e.n++
	return nil
}

// finish completes the TBSCertList, signs it with the issuer's key and
// returns the DER CertificateList.
func (e *crlEncoder) finish(iss *Issuer, rand io.Reader) ([]byte, error) {
	entries := len(e.buf) - e.room
	// Room for the extensions and the signature, so that appending them
	// does not copy a large list once more.
	e.buf = slices.Grow(e.buf, len(e.exts)+len(e.algID)+headerRoom+1+maxSignatureBytes)
	e.buf = append(e.buf, e.exts...)
	tbsEnd := len(e.buf)

	// The headers, right-aligned into the room before the entries. RFC
	// 5280 5.1.2.6: with no revoked certificates the list is absent, not
	// empty.
	var listHdr []byte
	if e.n > 0 {
		listHdr = appendHeader(nil, 0x30, entries)
	}
	tbsHdr := appendHeader(nil, 0x30, len(e.prefix)+len(listHdr)+entries+len(e.exts))
	start := e.room - len(listHdr) - len(e.prefix) - len(tbsHdr)
	at := start
	at += copy(e.buf[at:], tbsHdr)
	at += copy(e.buf[at:], e.prefix)
	copy(e.buf[at:], listHdr)
	tbs := e.buf[start:tbsEnd]

	sig, err := crypto.SignMessage(iss.Signer, rand, tbs, e.hash)
	if err != nil {
		return nil, fmt.Errorf("ca: signing CRL: %w", err)
	}
	if err := iss.Cert.CheckSignature(iss.sigAlg, tbs, sig); err != nil {
		return nil, fmt.Errorf("ca: CRL signature returned by the issuer's key is invalid: %w", err)
	}
	e.buf = append(e.buf, e.algID...)
	e.buf = appendHeader(e.buf, 0x03, len(sig)+1)
	e.buf = append(e.buf, 0)
	e.buf = append(e.buf, sig...)

	outer := appendHeader(nil, 0x30, len(e.buf)-start)
	if len(outer) > start {
		return nil, errors.New("ca: CRL header room exhausted") // cannot happen: room has three headers
	}
	copy(e.buf[start-len(outer):], outer)
	return e.buf[start-len(outer):], nil
}

// appendHeader appends a DER tag and definite length.
func appendHeader(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 1<<8:
		return append(b, 0x81, byte(n))
	case n < 1<<16:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendTime appends t as RFC 5280 4.1.2.5 wants: UTCTime through 2049,
// GeneralizedTime from 2050, in seconds and UTC.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y >= 1950 && y < 2050 {
		b = append(b, 0x17, 13)
		b = append2(b, y%100)
	} else {
		b = append(b, 0x18, 15)
		b = append2(b, y/100%100)
		b = append2(b, y%100)
	}
	b = append2(b, int(mo))
	b = append2(b, d)
	b = append2(b, h)
	b = append2(b, mi)
	b = append2(b, s)
	return append(b, 'Z')
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// serialDER decodes a SerialHex serial into buf and returns the contents
// of its DER INTEGER: minimal, with a leading zero octet when the first
// bit is set, so that the number stays positive.
func serialDER(buf []byte, hexSerial []byte) ([]byte, error) {
	if len(hexSerial) == 0 || len(hexSerial) > 2*serialBytes {
		return nil, fmt.Errorf("ca: stored serial %q is not a serial number", hexSerial)
	}
	// Decode right-aligned, from the last digit.
	i := len(buf)
	for j := len(hexSerial); j > 0; j -= 2 {
		lo, ok1 := unhex(hexSerial[j-1])
		hi, ok2 := byte(0), true
		if j >= 2 {
			hi, ok2 = unhex(hexSerial[j-2])
		}
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("ca: stored serial %q is not hexadecimal", hexSerial)
		}
		i--
		buf[i] = hi<<4 | lo
	}
	for i < len(buf)-1 && buf[i] == 0 && buf[i+1]&0x80 == 0 {
		i++
	}
	if buf[i]&0x80 != 0 {
		i--
		buf[i] = 0
	}
	return buf[i:], nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// signatureAlgorithmID returns the hash and the DER AlgorithmIdentifier
// of a signature algorithm an Issuer may use (see signatureAlgorithm).
func signatureAlgorithmID(alg x509.SignatureAlgorithm) (crypto.Hash, []byte, error) {
	var (
		hash crypto.Hash
		id   pkix.AlgorithmIdentifier
	)
	switch alg {
	case x509.ECDSAWithSHA256:
		hash, id.Algorithm = crypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	case x509.ECDSAWithSHA384:
		hash, id.Algorithm = crypto.SHA384, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	case x509.ECDSAWithSHA512:
		hash, id.Algorithm = crypto.SHA512, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	case x509.SHA256WithRSA:
		// RFC 4055: the parameters of the PKCS#1 v1.5 algorithms are NULL.
		hash, id.Algorithm, id.Parameters = crypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, asn1.NullRawValue
	default:
		return 0, nil, fmt.Errorf("ca: no CRL and OCSP signing with %s", alg)
	}
	der, err := asn1.Marshal(id)
	return hash, der, err
}
