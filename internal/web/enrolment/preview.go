package enrolment

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/mailca/mailca/internal/enrol"
)

// Views returns the names of the page templates a template set may
// override, each as <set>/form/<name>.html: "layout", "partials" and the
// views (see docs/restyling.md).
func Views() []string { return append(slices.Clone(shared), viewNames...) }

// DefaultTemplate returns the default text of the page template name, one
// of Views; an editor of overrides starts from it.
func DefaultTemplate(name string) (string, error) {
	if !slices.Contains(Views(), name) {
		return "", fmt.Errorf("enrolment: no page template %q", name)
	}
	b, err := templateFS.ReadFile("templates/" + name + ".html")
	return string(b), err
}

// PreviewTemplate renders the page template name (one of Views; "layout"
// and "partials" are shown on the form) with made-up data, using the
// override texts in sources, by template name, and the defaults for the
// rest. It fails as the pages would reject the override and fall back to
// the default: when a template does not parse, lacks what the layout
// needs, or fails to execute. The result is a whole page.
func PreviewTemplate(sources map[string]string, name string) ([]byte, error) {
	if !slices.Contains(Views(), name) {
		return nil, fmt.Errorf("enrolment: no page template %q", name)
	}
	view := name
	if slices.Contains(shared, name) {
		view = "form"
	}
	src := func(n string) (string, error) {
		if s, ok := sources[n]; ok {
			return s, nil
		}
		return DefaultTemplate(n)
	}
	var texts [3]string
	for i, n := range []string{"layout", "partials", view} {
		var err error
		if texts[i], err = src(n); err != nil {
			return nil, err
		}
	}
	t, err := parseView(view, texts[0], texts[1], texts[2])
	if err != nil {
		return nil, err
	}
	data := sampleView(view)
	p := data.page()
	p.StyleURL, p.AssetBase, p.ScriptURL, p.Policy = "/static/style.css", "/static/", "/static/copy.js", "staff"
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sampleView returns made-up data for a view, as its handler would make.
func sampleView(view string) pageData {
	p := enrol.DefaultPolicy()
	p.Name = "staff"
	e := &enrol.Enrolment{ID: 42, Policy: p.Name, Mailbox: "alice@example.com", GivenName: "Alice", Surname: "Liddell", State: enrol.Approved}
	switch view {
	case "form":
		return formView(p, e.Mailbox, map[string]string{enrol.FieldGivenName: "Alice", enrol.FieldSurname: "Liddell"}, nil, nil)
	case "submitted":
		return &SubmittedView{Page: Page{Title: "Thank you"}, Mailbox: e.Mailbox, GivenName: e.GivenName, LinkLifetime: lifetime(24 * time.Hour)}
	case "activate":
		return activateView(e, p, "sample-token", "")
	case "activated":
		pem := "-----BEGIN CERTIFICATE-----\nMIIB...sample...\n-----END CERTIFICATE-----\n"
		return &ActivatedView{Page: Page{Title: "Your certificate is ready"}, Mailbox: e.Mailbox, Server: true,
			Password: "sample-password-shown-once", Filename: "alice-example-com.p12",
			P12URL: dataURL("application/x-pkcs12", []byte("sample")), CertPEM: pem, CertURL: dataURL("application/x-pem-file", []byte(pem)),
			ChainPEM: pem, ChainURL: dataURL("application/x-pem-file", []byte(pem)), ChainFile: "chain.pem",
			Serial: "7f3a9c01d2e4b5a6", NotAfter: "14 March 2028", Issuer: "Example Issuing CA"}
	case "open":
		return &OpenView{Page: Page{Title: "Get an email certificate"}, Action: "/open/staff"}
	case "open_sent":
		return &OpenSentView{Page: Page{Title: "Check your mailbox"}, Email: e.Mailbox, LinkLifetime: "24 hours"}
	case "error":
		return &ErrorView{Page: Page{Title: "This link does not work"}, Status: 404, Heading: "This link does not work",
			Message: "This link is not valid: it may have expired or been used already; ask for a new one.", BadLink: true}
	case "revoke":
		return revokeView(&enrol.SelfRevocation{Serial: "7f3a9c01d2e4b5a6", Mailbox: e.Mailbox}, "sample-token", "")
	case "revoke_done":
		return &RevokedView{Page: Page{Title: "Your certificate is revoked"}, Mailbox: e.Mailbox, Serial: "7f3a9c01d2e4b5a6"}
	}
	return &ErrorView{Page: Page{Title: view}}
}
