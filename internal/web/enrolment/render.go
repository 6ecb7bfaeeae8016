package enrolment

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed templates/*.html
var templateFS embed.FS

// shared are the templates parsed with every view, before it: the layout
// (which defines "layout" and calls "content") and the partials.
var shared = []string{"layout", "partials"}

// setName is the form of a template set's name (enrol.Policy.Templates).
var setName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// maxOverride bounds an override template file.
const maxOverride = 1 << 20

// engine renders views from the embedded templates, or from a template
// set's overrides in the template directory. Overrides are re-read when
// their files change, so an organisation can restyle without a restart.
type engine struct {
	dir      string
	log      *slog.Logger
	sources  map[string]string             // embedded sources by name: "layout", "form", ...
	defaults map[string]*template.Template // by view

	mu   sync.Mutex
	sets map[string]*overrideSet
}

// overrideSet is the parsed overrides of one template set.
type overrideSet struct {
	stamp string                        // names, sizes and times of the files it was parsed from
	views map[string]*template.Template // views whose override parsed; others use the default
	style bool                          // the set has static/style.css
}

func newEngine(dir string, log *slog.Logger) (*engine, error) {
	e := &engine{dir: dir, log: log, sources: map[string]string{}, defaults: map[string]*template.Template{}, sets: map[string]*overrideSet{}}
	for _, name := range append(slices.Clone(shared), viewNames...) {
		b, err := templateFS.ReadFile("templates/" + name + ".html")
		if err != nil {
			return nil, fmt.Errorf("enrolment: no template for view %q: %w", name, err)
		}
		e.sources[name] = string(b)
	}
	for _, v := range viewNames {
		t, err := parseView(v, e.sources["layout"], e.sources["partials"], e.sources[v])
		if err != nil {
			return nil, fmt.Errorf("enrolment: default template: %w", err)
		}
		e.defaults[v] = t
	}
	// Parse the overrides there are now, so that their problems show in
	// the log at start-up rather than at the first visitor.
	if dir != "" {
		entries, _ := os.ReadDir(dir)
		for _, d := range entries {
			if d.IsDir() && setName.MatchString(d.Name()) {
				e.set(d.Name())
			}
		}
	}
	return e, nil
}

// parseView parses a view with the layout and partials it is rendered in,
// and checks that the templates the layout needs are defined.
func parseView(view, layout, partials, body string) (*template.Template, error) {
	t := template.New(view)
	for _, src := range []struct{ name, text string }{{"layout.html", layout}, {"partials.html", partials}, {view + ".html", body}} {
		if _, err := t.New(src.name).Parse(src.text); err != nil {
			return nil, err
		}
	}
	for _, need := range []string{"layout", "content"} {
		if t.Lookup(need) == nil {
			return nil, fmt.Errorf("view %s: template %q is not defined", view, need)
		}
	}
	return t, nil
}

// set returns the overrides of the named template set, parsing them again
// when their files changed; nil when the set has no folder.
func (e *engine) set(name string) *overrideSet {
	if e.dir == "" || !setName.MatchString(name) {
		return nil
	}
	base := filepath.Join(e.dir, name)
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		return nil
	}
	stamp, files, style := scanSet(base)
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sets[name]; s != nil && s.stamp == stamp {
		return s
	}
	s := &overrideSet{stamp: stamp, views: map[string]*template.Template{}, style: style}
	src := map[string]string{}
	for n, path := range files {
		if !slices.Contains(shared, n) && !slices.Contains(viewNames, n) {
			e.log.Warn("enrolment: override template is not a view; ignored", "set", name, "file", n+".html", "views", strings.Join(viewNames, ", "))
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) > maxOverride {
			e.log.Error("enrolment: override template unreadable or larger than 1 MiB; using the default", "set", name, "file", n+".html", "err", err)
			continue
		}
		src[n] = string(b)
	}
	for _, v := range viewNames {
		layout, lok := src["layout"]
		partials, pok := src["partials"]
		body, vok := src[v]
		if !lok && !pok && !vok {
			continue
		}
		if !lok {
			layout = e.sources["layout"]
		}
		if !pok {
			partials = e.sources["partials"]
		}
		if !vok {
			body = e.sources[v]
		}
		t, err := parseView(v, layout, partials, body)
		if err != nil {
			e.log.Error("enrolment: override template does not parse; using the default", "set", name, "view", v, "err", err)
			continue
		}
		s.views[v] = t
	}
	e.sets[name] = s
	return s
}

// scanSet lists a set's override templates (<base>/form/<name>.html) and
// returns a stamp that changes when any of them, or its stylesheet, does.
func scanSet(base string) (stamp string, files map[string]string, style bool) {
	files = map[string]string{}
	var b strings.Builder
	entries, _ := os.ReadDir(filepath.Join(base, "form"))
	for _, d := range entries {
		n, ok := strings.CutSuffix(d.Name(), ".html")
		if !ok || !d.Type().IsRegular() {
			continue
		}
		fi, err := d.Info()
		if err != nil {
			continue
		}
		files[n] = filepath.Join(base, "form", d.Name())
		fmt.Fprintf(&b, "%s:%d:%d;", d.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	if fi, err := os.Stat(filepath.Join(base, "static", "style.css")); err == nil && fi.Mode().IsRegular() {
		style = true
		fmt.Fprintf(&b, "style.css:%d:%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), files, style
}

// render writes view with data and status. The page is rendered into a
// buffer first, so a template that fails midway never sends half a page:
// a failing override falls back to the default, and a failing default
// (a bug) answers 500. secrets (tokens, passwords) are cut out of any
// error logged.
func (e *engine) render(w http.ResponseWriter, r *http.Request, status int, view string, data pageData, secrets ...string) {
	p := data.page()
	p.StyleURL, p.AssetBase, p.ScriptURL = "/static/style.css", "/static/", "/static/copy.js"
	var t *template.Template
	if s := e.set(p.Set); s != nil {
		p.AssetBase = "/static/sets/" + p.Set + "/"
		if s.style {
			p.StyleURL = p.AssetBase + "style.css"
		}
		t = s.views[view]
	}
	var buf bytes.Buffer
	if t != nil {
		if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
			e.log.ErrorContext(r.Context(), "enrolment: override template failed; using the default", "set", p.Set, "view", view, "err", redact(err, secrets))
			buf.Reset()
			t = nil
		}
	}
	if t == nil {
		if err := e.defaults[view].ExecuteTemplate(&buf, "layout", data); err != nil {
			e.log.ErrorContext(r.Context(), "enrolment: template failed", "view", view, "err", redact(err, secrets))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// redact returns err's text with every secret replaced.
func redact(err error, secrets []string) string {
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
