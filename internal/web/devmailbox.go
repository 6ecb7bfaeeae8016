package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/errs"
)

//go:embed templates/*.html
var templateFS embed.FS

// devViews are the development mailbox's views; each is parsed with
// dev_layout.html at start-up.
var devViews = []string{"dev_list", "dev_show"}

// devMailbox serves the development mailbox pages.
type devMailbox struct {
	box      DevMailbox
	log      *slog.Logger
	notFound http.HandlerFunc
	views    map[string]*template.Template
}

func newDevMailbox(box DevMailbox, log *slog.Logger, notFound http.HandlerFunc) (*devMailbox, error) {
	d := &devMailbox{box: box, log: log, notFound: notFound, views: map[string]*template.Template{}}
	for _, v := range devViews {
		t, err := template.ParseFS(templateFS, "templates/dev_layout.html", "templates/"+v+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", v, err)
		}
		if t.Lookup("layout") == nil || t.Lookup("content") == nil {
			return nil, fmt.Errorf("web: template %s lacks \"layout\" or \"content\"", v)
		}
		d.views[v] = t
	}
	return d, nil
}

// local lets only loopback clients reach h; everyone else gets the 404 of
// an unknown page. Behind a reverse proxy on the same host every request
// arrives from loopback, so a request with a forwarding header is refused
// too.
func (d *devMailbox) local(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			d.notFound(w, r)
			return
		}
		h(w, r)
	}
}

func fromLoopback(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.WithZone("").Unmap().IsLoopback() {
		return false
	}
	// The Host header must name this machine too: a web page the developer
	// visits could otherwise point its own name at 127.0.0.1 (DNS
	// rebinding) and read the live links here from the developer's browser.
	return loopbackHost(r.Host)
}

func loopbackHost(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && ip.WithZone("").Unmap().IsLoopback()
}

// render writes a dev view, buffered so that a failure sends no half page.
func (d *devMailbox) render(w http.ResponseWriter, r *http.Request, view string, data any) {
	var buf bytes.Buffer
	if err := d.views[view].ExecuteTemplate(&buf, "layout", data); err != nil {
		d.log.ErrorContext(r.Context(), "web: dev mailbox template failed", "view", view, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// message loads the message named by the path value "id"; it answers the
// request itself and returns nil when there is none.
func (d *devMailbox) message(w http.ResponseWriter, r *http.Request) *DevMessage {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.notFound(w, r)
		return nil
	}
	m, err := d.box.Get(r.Context(), id)
	switch {
	case errs.KindOf(err) == errs.NotFound, err == nil && m == nil:
		d.notFound(w, r)
		return nil
	case err != nil:
		d.log.ErrorContext(r.Context(), "web: dev mailbox", "id", id, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return nil
	}
	return m
}
