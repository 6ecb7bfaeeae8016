package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"
)

// RootCRLValidity is how long a root's CRL stays valid. The S/MIME BR
// (4.9.7) have a root publish its CRL at least every twelve months; the
// root key is offline, so the CRL is signed at init and then once a year
// with 'mailca ca root-crl'.
const RootCRLValidity = 365 * 24 * time.Hour

// NewRootCRL returns a CRL signed by root's key listing revoked (normally
// none: only a compromised issuing CA is ever on it), numbered number.
// It is what the CRL distribution point of an issuing CA made by NewIssuingCA
// points to.
func NewRootCRL(root *x509.Certificate, key crypto.Signer, revoked []x509.RevocationListEntry, number int64, now time.Time) ([]byte, error) {
	if !root.IsCA || root.CheckSignatureFrom(root) != nil {
		return nil, fmt.Errorf("ca: %q is not a self-signed root", root.Subject.CommonName)
	}
	sigAlg, err := signatureAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	thisUpdate := now.UTC().Truncate(time.Second)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		SignatureAlgorithm:        sigAlg,
		RevokedCertificateEntries: revoked,
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                thisUpdate.Add(RootCRLValidity),
	}, root, key)
	if err != nil {
		return nil, fmt.Errorf("ca: signing the root CRL: %w", err)
	}
	if err := CheckCARevocationList(der); err != nil {
		return nil, err
	}
	return der, nil
}
