package enrolment

import (
	"encoding/base64"
	"encoding/pem"
	"html/template"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

// maxCSR bounds the certificate request a user sends (ca.ParseCSR's limit).
const maxCSR = 64 << 10

// Inputs of the activation form.
const (
	inputMode    = "mode"
	inputCSR     = "csr"
	inputCSRFile = "csr_file"
)

var modeText = map[enrol.KeyMode][2]string{
	enrol.KeyServer: {"Create a key for me",
		"You get a PKCS#12 file with your key and certificate, protected by a password shown once. Outlook, Apple Mail and Thunderbird import it."},
	enrol.KeyCSR: {"I have a certificate signing request (CSR)",
		"You made a key yourself (with OpenSSL, a smart card tool or your mail program) and send only its request. You get the certificate; the key never leaves your computer."},
}

// activateView builds the activation page for e under p. mode is the
// mode to preselect ("" for the policy's first).
func activateView(e *enrol.Enrolment, p *enrol.Policy, token string, mode enrol.KeyMode) *ActivateView {
	v := &ActivateView{
		Page:      Page{Title: "Collect your certificate", Set: p.Templates, Policy: p.Name},
		Action:    "/a/" + token,
		Mailbox:   e.Mailbox,
		GivenName: e.GivenName,
		OffersCSR: p.AllowsKeyMode(enrol.KeyCSR),
	}
	if !p.AllowsKeyMode(mode) && len(p.KeyModes) > 0 {
		mode = p.KeyModes[0]
	}
	for _, m := range p.KeyModes {
		t := modeText[m]
		v.Modes = append(v.Modes, KeyModeView{Value: string(m), ID: "mode-" + string(m), Label: t[0], Hint: t[1], Checked: m == mode})
	}
	return v
}

// activationForm is what the activation form sent.
type activationForm struct {
	mode    enrol.KeyMode
	csr     []byte
	csrText string // as pasted, to show again after an error
	modeErr string
	csrErr  string
}

// readActivation reads the activation form, multipart (with a CSR file)
// or URL-encoded, and checks what can be checked without the domain.
func readActivation(r *http.Request) (*activationForm, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		// The route's body limit is far below maxMemory: nothing goes to disk.
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, err
		}
		defer r.MultipartForm.RemoveAll()
	} else if err := r.ParseForm(); err != nil {
		return nil, err
	}
	f := &activationForm{mode: enrol.KeyMode(r.PostForm.Get(inputMode))}
	f.csrText = strings.TrimSpace(r.PostForm.Get(inputCSR))
	f.csr = []byte(f.csrText)
	if len(f.csr) == 0 && r.MultipartForm != nil {
		if fhs := r.MultipartForm.File[inputCSRFile]; len(fhs) > 0 && fhs[0].Size > 0 {
			file, err := fhs[0].Open()
			if err != nil {
				return nil, err
			}
			f.csr, err = io.ReadAll(io.LimitReader(file, maxCSR+1))
			file.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	switch f.mode {
	case enrol.KeyServer:
		f.csr = nil
	case enrol.KeyCSR:
		switch {
		case len(f.csr) == 0:
			f.csrErr = "Paste your certificate signing request, or choose the file that holds it."
		case len(f.csr) > maxCSR:
			f.csrErr = "The certificate signing request is larger than 64 KiB; a real one is a few kilobytes."
		}
	default:
		f.modeErr = "Choose how to get your key."
	}
	return f, nil
}

// activatedView shows what Activate returned.
func activatedView(a *enrol.Activation, p *enrol.Policy) *ActivatedView {
	c := a.Cert.Cert
	v := &ActivatedView{
		Page:      Page{Title: "Your certificate is ready"},
		Mailbox:   a.Enrolment.Mailbox,
		Serial:    ca.SerialHex(c.SerialNumber),
		NotAfter:  c.NotAfter.UTC().Format("2 January 2006"),
		Issuer:    c.Issuer.CommonName,
		ChainFile: "chain.pem",
	}
	if p != nil {
		v.Set, v.Policy = p.Templates, p.Name
	}
	certPEM := pemCerts([][]byte{c.Raw})
	v.CertPEM, v.CertURL = string(certPEM), dataURL("application/x-pem-file", certPEM)
	var chain [][]byte
	for _, ic := range a.Cert.Chain {
		chain = append(chain, ic.Raw)
	}
	chainPEM := pemCerts(chain)
	v.ChainPEM, v.ChainURL = string(chainPEM), dataURL("application/x-pem-file", chainPEM)
	if len(a.P12) > 0 {
		v.Server, v.Password, v.Filename = true, a.Password, a.Filename
		v.P12URL = dataURL("application/x-pkcs12", a.P12)
	} else {
		v.Filename = fileName(a.Enrolment.Mailbox) + ".pem"
	}
	return v
}

func pemCerts(ders [][]byte) []byte {
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return b
}

// dataURL returns b as a data: URL. It is built from a fixed media type
// and base64 only, so it is safe as an href.
func dataURL(mediaType string, b []byte) template.URL {
	return template.URL("data:" + mediaType + ";base64," + base64.StdEncoding.EncodeToString(b))
}

// fileName makes a mailbox a portable file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_@", r)) {
			return r
		}
		return '_'
	}, s)
}
