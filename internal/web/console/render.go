package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
)

//go:embed templates/*.html
var templateFS embed.FS

// A view is templates/<view>.html defining "title" and "content"; it is
// parsed with layout.html and every partial (templates/_*.html) into a
// set of its own at New, so a missing or broken template stops start-up.

// parseViews parses every view of templates/.
func parseViews() (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	var partials, views []string
	for _, f := range files {
		switch base := path.Base(f); {
		case base == "layout.html":
		case strings.HasPrefix(base, "_"):
			partials = append(partials, f)
		default:
			views = append(views, f)
		}
	}
	out := map[string]*template.Template{}
	for _, v := range views {
		name := strings.TrimSuffix(path.Base(v), ".html")
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, append([]string{"templates/layout.html", v}, partials...)...)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		for _, need := range []string{"layout", "title", "content"} {
			if t.Lookup(need) == nil {
				return nil, fmt.Errorf("console: template %s does not define %q", name, need)
			}
		}
		out[name] = t
	}
	for _, need := range foundationViews {
		if out[need] == nil {
			return nil, fmt.Errorf("console: no template for view %q", need)
		}
	}
	return out, nil
}

// foundationViews are the views this package's own handlers render.
var foundationViews = []string{"error", "login", "join", "dashboard", "audit", "mail", "mail_show", "accounts"}

// permNames name the permissions for the templates' "can" function.
var permNames = map[string]auth.Permission{
	"view": auth.ViewEnrolments, "invite": auth.Invite, "approve": auth.Approve, "revoke": auth.Revoke,
	"policies": auth.EditPolicies, "templates": auth.EditTemplates, "mail": auth.ManageMail,
	"accounts": auth.ManageAccounts, "apikeys": auth.ManageAPIKeys, "audit": auth.ViewAudit,
}

// funcs are the functions every template may call.
var funcs = template.FuncMap{
	// can reports whether the principal has the named permission
	// ({{if can .Principal "approve"}}); an unknown name panics at render.
	"can": func(p *auth.Principal, name string) (bool, error) {
		perm, ok := permNames[name]
		if !ok {
			return false, fmt.Errorf("console: unknown permission %q", name)
		}
		return p.Can(perm), nil
	},
	// when formats a time for people; the zero time is "–".
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	// pngData lets a data: URL of a PNG image, which the handler made, be
	// an img src; anything else becomes an empty, harmless URL.
	"pngData": func(s string) template.URL {
		if !strings.HasPrefix(s, "data:image/png;base64,") || strings.ContainsAny(s, "\"'<> ") {
			return ""
		}
		return template.URL(s)
	},
	// linkify escapes text and makes its http and https URLs links (the
	// development mailbox shows emails' links to click).
	"linkify": linkify,
	// iso formats a time for machines (<time datetime>).
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

var urlInText = regexp.MustCompile(`https?://[^\s<>"']+`)

func linkify(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range urlInText.FindAllStringIndex(text, -1) {
		b.WriteString(template.HTMLEscapeString(text[last:m[0]]))
		u := strings.TrimRight(text[m[0]:m[1]], ".,;:!?)")
		esc := template.HTMLEscapeString(u)
		b.WriteString(`<a href="` + esc + `">` + esc + `</a>`)
		last = m[0] + len(u)
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String())
}

// navItem is one link of the navigation.
type navItem struct {
	Label, Path string
	Current     bool
}

// nav is the navigation, in order; an item shows when the principal may
// GET its path (so a page whose route is not registered never shows).
var nav = []navItem{
	{Label: "Dashboard", Path: "/console/"},
	{Label: "Applications", Path: "/console/applications"},
	{Label: "Invitations", Path: "/console/invitations"},
	{Label: "Certificates", Path: "/console/certificates"},
	{Label: "Policies", Path: "/console/policies"},
	{Label: "Templates", Path: "/console/templates"},
	{Label: "Mail", Path: "/console/mail"},
	{Label: "Audit log", Path: "/console/audit"},
	{Label: "Accounts", Path: "/console/accounts"},
	{Label: "API keys", Path: "/console/apikeys"},
	{Label: "Webhooks", Path: "/console/webhooks"},
}

// page is what the layout receives; a view's "content" receives it too
// and finds its own data in Data.
type page struct {
	Principal *auth.Principal
	Flash     string
	Data      any
	Nav       []navItem
}

// render writes view with status, inside the layout. data is the view's
// own data ({{.Data}} in the template).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, view string, data any) {
	t := c.views[view]
	if t == nil {
		c.log.ErrorContext(r.Context(), "console: no such view", "view", view)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := page{Principal: auth.FromContext(r.Context()), Data: data, Flash: c.takeFlash(w, r)}
	p.Nav = c.navFor(p.Principal, r.URL.Path)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		c.log.ErrorContext(r.Context(), "console: render", "view", view, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// navFor returns the navigation items p may open, marking the one for the
// current path.
func (c *Console) navFor(p *auth.Principal, current string) []navItem {
	if p == nil {
		return nil
	}
	var out []navItem
	for _, it := range nav {
		perm, ok := c.permOf("GET " + it.Path)
		if !ok || !p.Can(perm) {
			continue
		}
		it.Current = current == it.Path || (it.Path != "/console/" && strings.HasPrefix(current, it.Path+"/"))
		out = append(out, it)
	}
	return out
}

// permOf returns the permission of the registered route pattern.
func (c *Console) permOf(pattern string) (auth.Permission, bool) {
	if pattern == "GET /console/" {
		pattern = "GET /console/{$}"
	}
	for _, rt := range c.table {
		if rt.Pattern == pattern {
			return rt.Perm, rt.Perm != 0
		}
	}
	return 0, false
}

// errorPage is the data of the error view.
type errorPage struct {
	Title, Message string
}

// fail answers with the error page of err: its kind's status and its
// user-safe message; an internal error is logged and shown as "internal
// error".
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, title := http.StatusInternalServerError, "Something went wrong"
	switch errs.KindOf(err) {
	case errs.Invalid:
		status, title = http.StatusBadRequest, "Check your input"
	case errs.NotFound:
		status, title = http.StatusNotFound, "Not found"
	case errs.Conflict:
		status, title = http.StatusConflict, "Already done or changed"
	case errs.Forbidden:
		status, title = http.StatusForbidden, "Not allowed"
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			c.failStatus(w, r, http.StatusRequestEntityTooLarge, "Too large", "what you sent is too large")
			return
		}
		c.log.ErrorContext(r.Context(), "console: request failed", "route", r.Pattern, "err", err)
	}
	c.failStatus(w, r, status, title, errs.Message(err))
}

// failStatus answers with the error page.
func (c *Console) failStatus(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	c.render(w, r, status, "error", errorPage{Title: title, Message: msg})
}

// notFound is the 404 page of every unknown path under /console/.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.failStatus(w, r, http.StatusNotFound, "Not found", "there is no such page")
}

// flashCookie carries the message a redirect's target shows once.
const flashCookie = "mailca_flash"

// redirect answers 303 See Other to path (a path under /console/), with
// flash shown once on the page it leads to ("" for none).
func (c *Console) redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(flash), Path: "/console/",
			MaxAge: 60, HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode})
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// takeFlash returns the flash message of the request and deletes it.
func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) string {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/console/", MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode})
	msg, err := url.QueryUnescape(ck.Value)
	if err != nil || len(msg) > 500 {
		return ""
	}
	return msg
}
