package console

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/store"
)

// certificatePage is the data of the certificate view.
type certificatePage struct {
	Row     *store.CertificateRow
	Subject string
	Issuer  string
	SANs    []string
	Status  string // valid, expired or revoked
	PEM     string
	Reasons []string
	Reason  string // the reason chosen, when the form is shown again
	Message string
	Errors  map[string]string
}

// certificateFor returns the certificate of the path's {serial} when p may
// see it.
func (c *Console) certificateFor(r *http.Request) (*store.CertificateRow, *x509.Certificate, error) {
	serial := normalSerial(r.PathValue("serial"))
	row, err := c.cfg.Store.CertificateRow(r.Context(), serial)
	if isNotFound(err) || (err == nil && !auth.FromContext(r.Context()).CanPolicy(row.Policy)) || serial == "" {
		return nil, nil, errHidden
	}
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(row.DER)
	if err != nil {
		return nil, nil, err
	}
	return row, cert, nil
}

// certificateShow shows a certificate: subject, subject alternative names,
// serial, validity, status, the enrolment it was issued to, downloads and,
// for those who may revoke, the revocation form.
//
// Pattern: GET /console/certificates/{serial}.
func (c *Console) certificateShow(w http.ResponseWriter, r *http.Request) {
	c.showCertificate(w, r, http.StatusOK, "", nil, "")
}

func (c *Console) showCertificate(w http.ResponseWriter, r *http.Request, status int, msg string, fieldErrs map[string]string, reason string) {
	row, cert, err := c.certificateFor(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := certificatePage{Row: row, Subject: cert.Subject.String(), Issuer: cert.Issuer.String(),
		SANs: cert.EmailAddresses, Reasons: ca.RevocationReasons(), Reason: reason, Message: msg, Errors: fieldErrs,
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: row.DER}))}
	switch {
	case !row.RevokedAt.IsZero():
		data.Status = "revoked"
	case c.now().After(row.NotAfter):
		data.Status = "expired"
	default:
		data.Status = "valid"
	}
	if len(data.SANs) == 0 {
		// An internationalised mailbox is an SmtpUTF8Mailbox otherName,
		// which crypto/x509 does not decode: the record's mailbox is it.
		data.SANs = []string{row.Mailbox}
	}
	c.render(w, r, status, "certificate", data)
}

// pemName is the file name of a download: the serial and what it is.
func pemName(row *store.CertificateRow, what string) string {
	return strings.ReplaceAll(row.Serial, `"`, "") + "-" + what + ".pem"
}

// certificatePEM downloads the certificate as PEM.
//
// Pattern: GET /console/certificates/{serial}/cert.pem.
func (c *Console) certificatePEM(w http.ResponseWriter, r *http.Request) {
	row, _, err := c.certificateFor(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	servePEM(w, pemName(row, "cert"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: row.DER}))
}

// certificateChainPEM downloads the certificate followed by the issuing
// chain (Config.ChainPEM, the chain the public /ca/chain.pem serves).
//
// Pattern: GET /console/certificates/{serial}/chain.pem.
func (c *Console) certificateChainPEM(w http.ResponseWriter, r *http.Request) {
	row, _, err := c.certificateFor(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: row.DER})
	servePEM(w, pemName(row, "chain"), append(b, c.cfg.ChainPEM...))
}

func servePEM(w http.ResponseWriter, name string, b []byte) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(b)
}
