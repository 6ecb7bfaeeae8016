package console

import (
	"net/http"

	"github.com/mailca/mailca/internal/auth"
)

// Body limits of the console's forms.
const (
	formLimit   = 256 << 10 // every form but the CSV upload
	uploadLimit = 32 << 20  // a multipart form: the CSV batch upload
)

// handleFunc registers h at pattern behind a session that has perm: see
// Console.handle.
type handleFunc func(pattern string, perm auth.Permission, h http.HandlerFunc)

// routes is the console's route table. Every route but login, join, the
// static files and the page a logged-out POST is answered with needs a
// session and exactly one permission (see auth.Permission); c.table
// records them, and the authorization matrix test walks it.
//
// The join path carries a secret token: the server's request log shows the
// pattern, never the path (Handler's Route), and GET never spends it.
func (c *Console) routes(mux *http.ServeMux) {
	handle := func(pattern string, perm auth.Permission, h http.HandlerFunc) {
		c.table = append(c.table, Route{Pattern: pattern, Perm: perm})
		mux.Handle(pattern, c.handle(perm, h))
	}
	public := func(pattern string, h http.HandlerFunc) {
		c.table = append(c.table, Route{Pattern: pattern})
		mux.Handle(pattern, c.public(h))
	}
	file := func(pattern string, h http.HandlerFunc) {
		c.table = append(c.table, Route{Pattern: pattern})
		mux.Handle(pattern, h) // no session lookup for a stylesheet
	}

	// Without a session: logging in, joining (and the first-run setup),
	// the stylesheet and script.
	public("GET /console/login", c.showLogin)
	public("POST /console/login", c.submitLogin)
	public("GET /console/join/{token}", c.showJoin)
	public("POST /console/join/{token}", c.submitJoin)
	file("GET /console/static/{file}", c.static)
	public("POST /console/logout", c.logout)

	handle("GET /console/{$}", auth.ViewEnrolments, c.dashboard)

	handle("GET /console/audit", auth.ViewAudit, c.auditLog)
	handle("POST /console/audit.csv", auth.ViewAudit, c.auditCSV)

	handle("GET /console/mail", auth.ManageMail, c.mailPage)
	handle("GET /console/mail/{id}", auth.ManageMail, c.mailShow)
	handle("POST /console/mail/test", auth.ManageMail, c.mailTest)

	handle("GET /console/accounts", auth.ManageAccounts, c.accounts)
	handle("POST /console/accounts", auth.ManageAccounts, c.inviteAccount)
	handle("POST /console/accounts/{id}/role", auth.ManageAccounts, c.setRole)
	handle("POST /console/accounts/{id}/remove", auth.ManageAccounts, c.removeAccount)
	handle("POST /console/accounts/{id}/logout", auth.ManageAccounts, c.logoutAccount)
	handle("POST /console/accounts/{id}/unlock", auth.ManageAccounts, c.unlockAccount)
	handle("POST /console/accounts/invitations/{id}/cancel", auth.ManageAccounts, c.cancelAccountInvitation)

	handle("GET /console/apikeys", auth.ManageAPIKeys, c.apiKeys)
	handle("POST /console/apikeys", auth.ManageAPIKeys, c.createAPIKey)
	handle("POST /console/apikeys/{id}/revoke", auth.ManageAPIKeys, c.revokeAPIKey)
	handle("GET /console/webhooks", auth.ManageAPIKeys, c.webhooks)
	handle("POST /console/webhooks", auth.ManageAPIKeys, c.addWebhook)
	handle("POST /console/webhooks/{id}/remove", auth.ManageAPIKeys, c.removeWebhook)

	// Invitations, batches, the Authorization Panel, certificates,
	// policies and templates: pages.go.
	c.pageRoutes(handle)

	// Anything else under /console/: the console's 404 page.
	public("/console/", c.notFound)
}
