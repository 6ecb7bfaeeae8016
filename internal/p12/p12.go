// Package p12 encodes private keys and certificates as PKCS#12 files that mail clients import.
package p12

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// Format selects the algorithms that protect a PKCS#12 file.
type Format int

const (
	// Legacy protects the key and the certificates with
	// pbeWithSHAAnd3-KeyTripleDES-CBC and the file with an HMAC-SHA-1 MAC,
	// 2048 iterations each. It is the format that mail clients without
	// PBES2 support import: Outlook, Apple Mail, iOS, Android, Thunderbird
	// and gpgsm 2.2, which takes RSA keys only.
	Legacy Format = iota

	// Modern protects the key and the certificates with PBES2 (PBKDF2 with
	// HMAC-SHA-256, AES-256-CBC) and the file with an HMAC-SHA-256 MAC,
	// as OpenSSL 3 does by default. gpgsm 2.2 cannot read it.
	Modern
)

// ParseFormat returns the Format named by s, "legacy" or "modern".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "legacy":
		return Legacy, nil
	case "modern":
		return Modern, nil
	}
	return 0, fmt.Errorf("p12: unknown format %q", s)
}

// String returns the name that ParseFormat accepts.
func (f Format) String() string {
	switch f {
	case Legacy:
		return "legacy"
	case Modern:
		return "modern"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Iteration counts. Legacy keeps the 2048 that OpenSSL has long written,
// the count old clients have been importing. Passwords from NewPassword
// carry 120 bits, so stretching matters only for passwords chosen by
// people; Modern raises both counts, the MAC's too, because the MAC is as
// good a password oracle as the encrypted key.
const (
	legacyIterations = 2048
	modernIterations = 10000
)

var (
	oidData               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKeyBag     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidX509Certificate    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidFriendlyName       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidSHA1               = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidPBEWithSHA3KeyTDES = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBES2              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA256     = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// pfx is PFX (RFC 7292, section 4).
type pfx struct {
	Version  int // v3
	AuthSafe contentInfo
	MacData  macData
}

// macData is MacData (RFC 7292, section 4).
type macData struct {
	Mac        digestInfo
	MacSalt    []byte
	Iterations int
}

// digestInfo is DigestInfo (RFC 8017, section 9.2).
type digestInfo struct {
	DigestAlgorithm pkix.AlgorithmIdentifier
	Digest          []byte
}

// contentInfo is ContentInfo (RFC 5652, section 3).
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, built by explicit
}

// encryptedData is EncryptedData (RFC 5652, section 8).
type encryptedData struct {
	Version              int // 0
	EncryptedContentInfo encryptedContentInfo
}

// encryptedContentInfo is EncryptedContentInfo (RFC 5652, section 6.1).
type encryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           []byte `asn1:"tag:0"`
}

// safeBag is SafeBag (RFC 7292, section 4.2).
type safeBag struct {
	BagID         asn1.ObjectIdentifier
	BagValue      asn1.RawValue // [0] EXPLICIT, built by explicit
	BagAttributes []attribute   `asn1:"set,omitempty"`
}

// attribute is PKCS12Attribute (RFC 7292, section 4.2).
type attribute struct {
	AttrID     asn1.ObjectIdentifier
	AttrValues []asn1.RawValue `asn1:"set"`
}

// certBag is CertBag (RFC 7292, section 4.2.3).
type certBag struct {
	CertID    asn1.ObjectIdentifier
	CertValue []byte `asn1:"tag:0,explicit"`
}

// encryptedPrivateKeyInfo is EncryptedPrivateKeyInfo (RFC 5958, section 3).
type encryptedPrivateKeyInfo struct {
	EncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedData       []byte
}

// Encode returns a PKCS#12 file holding key, cert and chain, protected by
// password as Format f prescribes. The key and cert bags carry the
// friendlyName that clients show for the identity, and a localKeyId, the
// SHA-1 of cert's DER, that pairs them. The chain, issuing CA first and the
// root optional, follows the leaf in cert bags of its own. rand supplies the
// salts and IVs.
//
// key must be an *ecdsa.PrivateKey or *rsa.PrivateKey matching cert's public
// key; password and friendlyName must be valid UTF-8.
func Encode(rand io.Reader, key crypto.PrivateKey, cert *x509.Certificate, chain []*x509.Certificate, friendlyName, password string, f Format) ([]byte, error) {
	if f != Legacy && f != Modern {
		return nil, fmt.Errorf("p12: unknown format %v", f)
	}
	if cert == nil {
		return nil, errors.New("p12: no certificate")
	}
	if err := checkKey(key, cert); err != nil {
		return nil, err
	}
	if !utf8.ValidString(password) {
		return nil, errors.New("p12: password is not valid UTF-8")
	}
	if !utf8.ValidString(friendlyName) {
		return nil, errors.New("p12: friendly name is not valid UTF-8")
	}
	iterations := legacyIterations
	if f == Modern {
		iterations = modernIterations
	}

	keyID := sha1.Sum(cert.Raw)
	attrs, err := bagAttributes(friendlyName, keyID[:])
	if err != nil {
		return nil, err
	}

	// 1. Certificate SafeContents, leaf first: clients, and go-pkcs12,
	// take the first cert bag as the one the key belongs to.
	bags := make([]safeBag, 0, 1+len(chain))
	for i, c := range append([]*x509.Certificate{cert}, chain...) {
		if c == nil {
			return nil, errors.New("p12: nil certificate in chain")
		}
		b, err := asn1.Marshal(certBag{CertID: oidX509Certificate, CertValue: c.Raw})
		if err != nil {
			return nil, fmt.Errorf("p12: %w", err)
		}
		bag := safeBag{BagID: oidCertBag, BagValue: explicit(b)}
		if i == 0 {
			bag.BagAttributes = attrs
		}
		bags = append(bags, bag)
	}
	certSafe, err := asn1.Marshal(bags)
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}
	alg, ciphertext, err := encrypt(rand, f, password, iterations, certSafe)
	if err != nil {
		return nil, err
	}
	ed, err := asn1.Marshal(encryptedData{
		Version: 0,
		EncryptedContentInfo: encryptedContentInfo{
			ContentType:                oidData,
			ContentEncryptionAlgorithm: alg,
			EncryptedContent:           ciphertext,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}

	// 2. Key SafeContents: a single pkcs8ShroudedKeyBag, left in a plain
	// data ContentInfo because the bag is encrypted itself.
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}
	alg, ciphertext, err = encrypt(rand, f, password, iterations, pkcs8)
	if err != nil {
		return nil, err
	}
	epki, err := asn1.Marshal(encryptedPrivateKeyInfo{EncryptionAlgorithm: alg, EncryptedData: ciphertext})
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}
	keySafe, err := asn1.Marshal([]safeBag{{
		BagID:         oidShroudedKeyBag,
		BagValue:      explicit(epki),
		BagAttributes: attrs,
	}})
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}
	keyData, err := dataContent(keySafe)
	if err != nil {
		return nil, err
	}

	// 3. AuthenticatedSafe, in the order OpenSSL writes it.
	authSafe, err := asn1.Marshal([]contentInfo{
		{ContentType: oidEncryptedData, Content: explicit(ed)},
		keyData,
	})
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}

	// 4. MAC over the AuthenticatedSafe's DER, the content of the outer
	// data ContentInfo.
	md, err := mac(rand, f, password, iterations, authSafe)
	if err != nil {
		return nil, err
	}
	outer, err := dataContent(authSafe)
	if err != nil {
		return nil, err
	}
	der, err := asn1.Marshal(pfx{Version: 3, AuthSafe: outer, MacData: md})
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}
	return der, nil
}

// checkKey reports whether key is of a supported type and belongs to cert,
// so that a mix-up fails here rather than in the subscriber's mail client.
func checkKey(key crypto.PrivateKey, cert *x509.Certificate) error {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("p12: unsupported key type %T", key)
	}
	switch key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		return fmt.Errorf("p12: unsupported key type %T", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("p12: key does not match certificate")
	}
	return nil
}

// bagAttributes returns the friendlyName and localKeyId attributes
// (PKCS #9, RFC 2985, sections 5.5.1 and 5.5.2).
func bagAttributes(friendlyName string, keyID []byte) ([]attribute, error) {
	id, err := asn1.Marshal(keyID)
	if err != nil {
		return nil, fmt.Errorf("p12: %w", err)
	}
	return []attribute{
		{AttrID: oidFriendlyName, AttrValues: []asn1.RawValue{{
			Class: asn1.ClassUniversal,
			Tag:   asn1.TagBMPString,
			Bytes: bmpString(friendlyName),
		}}},
		{AttrID: oidLocalKeyID, AttrValues: []asn1.RawValue{{FullBytes: id}}},
	}, nil
}

// dataContent returns a data ContentInfo (RFC 5652, section 4) holding b.
func dataContent(b []byte) (contentInfo, error) {
	octets, err := asn1.Marshal(b)
	if err != nil {
		return contentInfo{}, fmt.Errorf("p12: %w", err)
	}
	return contentInfo{ContentType: oidData, Content: explicit(octets)}, nil
}

// explicit returns der under an [0] EXPLICIT tag. It exists because
// encoding/asn1 writes a RawValue's FullBytes verbatim, ignoring the tag in
// the field's struct tag.
func explicit(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

// mac returns the MacData over authSafe. Both formats derive the HMAC key
// with the PKCS#12 KDF: PBMAC1 (RFC 9579) would be the PBES2 counterpart,
// but few clients read it yet.
func mac(rand io.Reader, f Format, password string, iterations int, authSafe []byte) (macData, error) {
	h, oid := sha1.New, oidSHA1
	if f == Modern {
		h, oid = sha256.New, oidSHA256
	}
	salt := make([]byte, saltLen(f))
	if _, err := io.ReadFull(rand, salt); err != nil {
		return macData{}, fmt.Errorf("p12: reading salt: %w", err)
	}
	key := pkcs12KDF(h, bmpPassword(password), salt, idMAC, iterations, h().Size())
	m := hmac.New(h, key)
	m.Write(authSafe)
	return macData{
		Mac: digestInfo{
			DigestAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
			Digest:          m.Sum(nil),
		},
		MacSalt:    salt,
		Iterations: iterations,
	}, nil
}

// saltLen returns the salt length in bytes: 8 is what RFC 7292 and OpenSSL
// use for the legacy algorithms; Modern follows NIST SP 800-132's 128 bits.
func saltLen(f Format) int {
	if f == Modern {
		return 16
	}
	return 8
}

// bmpString returns s as a BMPString's content, UTF-16 big-endian. Runes
// outside the BMP become surrogate pairs, as OpenSSL and Windows write them.
func bmpString(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c>>8), byte(c))
	}
	return b
}

// bmpPassword returns password as the PKCS#12 KDF expects it (RFC 7292,
// appendix B.1): a BMPString with a trailing NUL.
func bmpPassword(password string) []byte {
	return append(bmpString(password), 0, 0)
}
