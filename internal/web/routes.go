package web

import (
	"net/http"

	"github.com/mailca/mailca/internal/web/enrolment"
	"github.com/mailca/mailca/internal/web/pki"
)

// Body limits of the routes that take a body.
const (
	formLimit       = 1 << 20   // the enrolment and open self-enrolment forms
	activationLimit = 256 << 10 // the activation form: a CSR of at most 64 KiB, pasted or as a file
)

// routes is the route table: every URL mailca serves.
//
// Links carry a secret: the token in the path of /e/ and /a/, the signed
// referral in the query of /r. Their pages are no-store and no-referrer
// (middleware.go), the request log shows the pattern and never the path,
// and GET never changes state: only the POST of a form spends a link.
func routes(mux *http.ServeMux, e *enrolment.Handler, dev *devMailbox, p *pki.Handler, o *ops) {
	// Invitation and verification links: the enrolment form.
	mux.HandleFunc("GET /e/{token}", e.ShowForm)
	mux.HandleFunc("POST /e/{token}", limitBody(formLimit, e.SubmitForm))
	// Activation links: choose a key mode, get the certificate.
	// Revocation links, sent with each certificate: the subscriber revokes
	// their own certificate.
	mux.HandleFunc("GET /revoke/{token}", e.ShowRevocation)
	mux.HandleFunc("POST /revoke/{token}", limitBody(formLimit, e.SubmitRevocation))
	mux.HandleFunc("GET /a/{token}", e.ShowActivation)
	mux.HandleFunc("POST /a/{token}", limitBody(activationLimit, e.Activate))
	// Signed referrals from another site: GET /r?t=<jws>; POST /r with t.
	mux.HandleFunc("GET /r", e.ShowReferral)
	mux.HandleFunc("POST /r", limitBody(formLimit, e.SubmitReferral))
	// Open self-enrolment: an address, then a verification link (/e/).
	mux.HandleFunc("GET /enrol/{policy}", e.ShowOpen)
	mux.HandleFunc("POST /enrol/{policy}", limitBody(formLimit, e.StartOpen))

	// Public files: the issuing chain, the embedded stylesheet and script,
	// and the static files of organisations' template sets.
	mux.HandleFunc("GET /ca/chain.pem", e.Chain)
	mux.HandleFunc("GET /static/{file}", e.Static)
	mux.HandleFunc("GET /static/sets/{set}/{file}", e.SetStatic)

	// What relying parties fetch, at the URLs in every certificate (see
	// ca.Issuer): CRLs, OCSP (RFC 5019 GET and POST) and CA certificates.
	// GET /ocsp/ never reaches the mux: see pki.Handler.KeepOCSPPaths.
	if p != nil {
		mux.HandleFunc("GET /crl/{file}", p.CRL)
		mux.HandleFunc("GET /ca/{file}", p.CACert)
		mux.HandleFunc("POST /ocsp", p.OCSPPost)
		mux.HandleFunc("GET /ocsp/{request...}", p.OCSPGet)
	}

	// Development mailbox: only when no SMTP server is configured
	// (Config.Mailbox != nil), and only for requests from a loopback
	// address without proxy headers. It shows every email with its live
	// links, so whoever reads it can enrol as anyone.
	if dev != nil {
		mux.HandleFunc("GET /dev/mailbox", dev.local(dev.list))
		mux.HandleFunc("GET /dev/mailbox/{id}", dev.local(dev.show))
		mux.HandleFunc("GET /dev/mailbox/{id}/html", dev.local(dev.html))
	}

	// Operations: liveness, readiness and Prometheus metrics, without
	// authentication and without anything that names a person (see
	// docs/operating.md). /readyz and /metrics only when configured.
	mux.HandleFunc("GET /healthz", o.healthz)
	if o.ready != nil {
		mux.HandleFunc("GET /readyz", o.readyz)
	}
	if o.metrics != nil {
		mux.Handle("GET /metrics", o.metrics)
	}

	// Everything else: a friendly 404.
	mux.HandleFunc("/", e.NotFound)
}
