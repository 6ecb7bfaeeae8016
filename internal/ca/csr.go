package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// maxCSRSize bounds what ParseCSR reads; a real CSR is a few kilobytes.
const maxCSRSize = 64 << 10

// ParseCSR parses a PKCS#10 request in PEM or DER, checks its signature
// (proof that the requester holds the private key) and checks that its key is
// one the BR allow for a subscriber. Only the public key of the result should
// be used: names and extensions in a CSR are the requester's claims, and the
// mailbox comes from validation, never from the CSR.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	if len(b) > maxCSRSize {
		return nil, &RequestError{Reason: BadCSR, Detail: fmt.Sprintf("larger than %d bytes", maxCSRSize)}
	}
	der := b
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, &RequestError{Reason: BadCSR, Detail: fmt.Sprintf("PEM block is %q, want CERTIFICATE REQUEST", block.Type)}
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &RequestError{Reason: BadCSR, Detail: "does not parse as PKCS#10"}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &RequestError{Reason: BadCSR, Detail: "signature does not verify"}
	}
	if err := CheckSubscriberKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr, nil
}

// CheckSubscriberKey refuses keys the S/MIME BR (6.1.5) do not allow: RSA
// below 2048 bits or of a size not a multiple of 8, RSA with an even or tiny
// exponent, and elliptic curves other than P-256, P-384 and P-521.
func CheckSubscriberKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		n := k.N.BitLen()
		if n < 2048 {
			return &RequestError{Reason: WeakKey, Detail: fmt.Sprintf("RSA key of %d bits, want at least 2048", n)}
		}
		if n%8 != 0 {
			return &RequestError{Reason: WeakKey, Detail: fmt.Sprintf("RSA modulus of %d bits is not a multiple of 8", n)}
		}
		if n > 8192 {
			return &RequestError{Reason: WeakKey, Detail: fmt.Sprintf("RSA key of %d bits, want at most 8192", n)}
		}
		if k.E < 65537 || k.E%2 == 0 {
			return &RequestError{Reason: WeakKey, Detail: fmt.Sprintf("RSA public exponent %d, want an odd number of at least 65537", k.E)}
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return &RequestError{Reason: WeakKey, Detail: fmt.Sprintf("curve %s, want P-256, P-384 or P-521", k.Curve.Params().Name)}
	}
	return &RequestError{Reason: WeakKey, Detail: fmt.Sprintf("key type %T, want RSA or ECDSA", pub)}
}
