package console

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/web/enrolment"
)

// Edited templates are stored where the renderers read overrides, in the
// data directory's templates folder (Config.TemplateDir), per template set:
// <set>/mail/<name>.subject, .txt and .html for emails (package outbox),
// <set>/form/<name>.html for the enrolment pages (package
// web/enrolment). The pages pick up a change at their next request; the
// outbox reads its overrides when mailca starts. A template is checked
// with the renderer's own parser and rendered with sample data before it
// is written: one that does not parse or does not render is refused with
// the error and never saved.

// maxTemplateBytes bounds one template part, as the enrolment pages do.
const maxTemplateBytes = 1 << 20

// mailParts are the files of an email template.
var mailParts = []string{"subject", "txt", "html"}

// templatesPage is the data of the templates view.
type templatesPage struct {
	NoDir    bool
	Policies []templatePolicy
}

// templatePolicy is a policy's template set and its templates.
type templatePolicy struct {
	Name, Set string
	Mail      []templateRef
	Pages     []templateRef
}

// templateRef is one template and whether the set overrides it.
type templateRef struct {
	Name       string
	Overridden bool
}

// templateForm is the data of the template_edit view.
type templateForm struct {
	Policy, Set, Name string
	Mail              bool              // an email (subject, txt, html) rather than a page (body)
	Parts             map[string]string // mail: by part; page: "body"
	Overridden        bool
	Error             string // why the template was refused
	Preview           string // the rendered HTML for the sandboxed frame
	PreviewSubject    string
	PreviewText       string
}

// templateList lists each policy's template set with its email and page
// templates, marking the ones the set overrides.
//
// Pattern: GET /console/templates.
func (c *Console) templateList(w http.ResponseWriter, r *http.Request) {
	data := templatesPage{NoDir: c.cfg.TemplateDir == ""}
	names, err := c.cfg.Enrol.PolicyNames(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, n := range names {
		p, err := c.cfg.Enrol.Policy(r.Context(), n)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		tp := templatePolicy{Name: p.Name, Set: p.Templates}
		for _, m := range outbox.Names() {
			tp.Mail = append(tp.Mail, templateRef{m, c.overridden(p.Templates, "mail", m, mailParts...)})
		}
		for _, v := range enrolment.Views() {
			tp.Pages = append(tp.Pages, templateRef{v, c.overridden(p.Templates, "form", v, "html")})
		}
		data.Policies = append(data.Policies, tp)
	}
	c.render(w, r, http.StatusOK, "templates", data)
}

// overridden reports whether set has a file of the named template.
func (c *Console) overridden(set, kind, name string, exts ...string) bool {
	if c.cfg.TemplateDir == "" || set == "" {
		return false
	}
	for _, ext := range exts {
		if fi, err := os.Stat(filepath.Join(c.cfg.TemplateDir, set, kind, name+"."+ext)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// templateOf returns the form of the path's {policy} and {name}, with
// the set's current texts (overrides, else the defaults).
func (c *Console) templateOf(ctx context.Context, r *http.Request) (*templateForm, error) {
	if c.cfg.TemplateDir == "" {
		return nil, errs.E(errs.Conflict, "mailca runs without a data directory, so there is nowhere to keep edited templates")
	}
	p, err := c.cfg.Enrol.Policy(ctx, r.PathValue("policy"))
	if err != nil {
		return nil, err
	}
	if p.Templates == "" {
		return nil, errs.E(errs.Conflict, "policy %s uses the default templates: give it a template set (its templates setting) to edit them", p.Name)
	}
	f := &templateForm{Policy: p.Name, Set: p.Templates, Name: r.PathValue("name"), Parts: map[string]string{}}
	switch {
	case slices.Contains(outbox.Names(), f.Name):
		f.Mail = true
		for _, part := range mailParts {
			text, over, err := c.readTemplate(f.Set, "mail", f.Name+"."+part)
			if err != nil {
				return nil, err
			}
			if !over {
				if text, err = outbox.DefaultSource(f.Name, part); err != nil {
					return nil, err
				}
			}
			f.Parts[part], f.Overridden = text, f.Overridden || over
		}
	case slices.Contains(enrolment.Views(), f.Name):
		text, over, err := c.readTemplate(f.Set, "form", f.Name+".html")
		if err != nil {
			return nil, err
		}
		if !over {
			if text, err = enrolment.DefaultTemplate(f.Name); err != nil {
				return nil, err
			}
		}
		f.Parts["body"], f.Overridden = text, over
	default:
		return nil, errs.E(errs.NotFound, "there is no template %q", f.Name)
	}
	return f, nil
}

// readTemplate returns an override file of set, and whether there is one.
func (c *Console) readTemplate(set, kind, file string) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(c.cfg.TemplateDir, set, kind, file))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	return string(b), err == nil, err
}

// posted replaces f's texts with the form's.
func (f *templateForm) posted(r *http.Request) error {
	names := []string{"body"}
	if f.Mail {
		names = mailParts
	}
	for _, n := range names {
		v := strings.ReplaceAll(r.PostFormValue(n), "\r\n", "\n")
		if len(v) > maxTemplateBytes {
			return errs.E(errs.Invalid, "the %s is larger than 1 MiB", n)
		}
		f.Parts[n] = v
	}
	if f.Mail && strings.TrimSpace(f.Parts["html"]) != "" && strings.TrimSpace(f.Parts["txt"]) == "" {
		return errs.E(errs.Invalid, "an HTML body needs a text body: mail programs that show no HTML show the text")
	}
	return nil
}

// check renders f with sample data through the renderer that will use it,
// filling the preview; the error says why the renderer would refuse it.
func (c *Console) check(f *templateForm) error {
	if f.Mail {
		return checkMail(f)
	}
	sources := map[string]string{}
	for _, v := range enrolment.Views() {
		text, over, err := c.readTemplate(f.Set, "form", v+".html")
		if err != nil {
			return err
		}
		if over {
			sources[v] = text
		}
	}
	sources[f.Name] = f.Parts["body"]
	page, err := enrolment.PreviewTemplate(sources, f.Name)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "the template was refused: "+err.Error())
	}
	if f.Name == "layout" || f.Name == "partials" {
		// Every page is made with these: each must still render.
		for _, v := range enrolment.Views() {
			if v == "layout" || v == "partials" {
				continue
			}
			if _, err := enrolment.PreviewTemplate(sources, v); err != nil {
				return errs.Wrap(errs.Invalid, err, "the template was refused: with it, page "+v+" fails: "+err.Error())
			}
		}
	}
	f.Preview = string(page)
	return nil
}

// checkMail writes f's parts into a scratch template set and renders the
// message with outbox.Templates, which reports an override that does not
// parse or fails to render as a problem (and would send the default).
func checkMail(f *templateForm) error {
	dir, err := os.MkdirTemp("", "mailca-template-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mailDir := filepath.Join(dir, f.Set, "mail")
	if err := os.MkdirAll(mailDir, 0o700); err != nil {
		return err
	}
	for _, part := range mailParts {
		if strings.TrimSpace(f.Parts[part]) == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(mailDir, f.Name+"."+part), []byte(f.Parts[part]), 0o600); err != nil {
			return err
		}
	}
	tm, err := outbox.NewTemplates(dir)
	if err != nil {
		return err
	}
	subject, text, html, err := tm.Preview(outbox.Message{Template: f.Name, TemplateSet: f.Set, To: "alice@example.com", Data: outbox.SampleData(f.Name)})
	if probs := tm.Problems(); len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, p := range probs {
			msgs[i] = strings.ReplaceAll(p.Error(), dir, "")
		}
		return errs.E(errs.Invalid, "the template was refused: %s", strings.Join(msgs, "; "))
	}
	if err != nil {
		return err
	}
	f.PreviewSubject, f.PreviewText, f.Preview = subject, text, html
	return nil
}

// templateEdit shows a template of a policy's set, its override or the
// default, with a preview.
//
// Pattern: GET /console/templates/{policy}/{name}.
func (c *Console) templateEdit(w http.ResponseWriter, r *http.Request) {
	f, err := c.templateOf(r.Context(), r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.check(f); err != nil {
		// A broken file put there by hand: say so; the renderer uses the default.
		f.Error = errs.Message(err)
	}
	c.render(w, r, http.StatusOK, "template_edit", f)
}

// templatePreview renders the posted template with sample data, without
// saving it.
//
// Pattern: POST /console/templates/{policy}/{name}/preview (subject, txt,
// html for an email; body for a page).
func (c *Console) templatePreview(w http.ResponseWriter, r *http.Request) {
	f, err := c.templateOf(r.Context(), r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if err := f.posted(r); err != nil {
		f.Error, status = errs.Message(err), http.StatusBadRequest
	} else if err := c.check(f); err != nil {
		if errs.KindOf(err) == errs.Internal {
			c.fail(w, r, err)
			return
		}
		f.Error, status = errs.Message(err), http.StatusBadRequest
	}
	c.render(w, r, status, "template_edit", f)
}

// templateSave checks the posted template and writes it into the set's
// folder; "reset" removes the set's override of it instead.
//
// Pattern: POST /console/templates/{policy}/{name} (subject, txt, html or
// body; reset).
func (c *Console) templateSave(w http.ResponseWriter, r *http.Request) {
	f, err := c.templateOf(r.Context(), r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	back := "/console/templates/" + f.Policy + "/" + f.Name
	if r.PostFormValue("reset") != "" {
		if err := c.removeTemplate(f); err != nil {
			c.fail(w, r, err)
			return
		}
		c.audit(r, "template.reset", "template:"+f.Set+"/"+f.Name, "")
		c.reloadMail(f)
		c.redirect(w, r, back, fmt.Sprintf("Template set %s uses the default %s again.", f.Set, f.Name))
		return
	}
	if err := f.posted(r); err != nil {
		f.Error = errs.Message(err)
	} else if err := c.check(f); err != nil {
		if errs.KindOf(err) == errs.Internal {
			c.fail(w, r, err)
			return
		}
		f.Error = errs.Message(err)
	}
	if f.Error != "" {
		c.render(w, r, http.StatusBadRequest, "template_edit", f)
		return
	}
	if err := c.writeTemplate(f); err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "template.save", "template:"+f.Set+"/"+f.Name, "")
	msg := fmt.Sprintf("Template %s of set %s is saved; the enrolment pages use it from now on.", f.Name, f.Set)
	if f.Mail {
		msg = fmt.Sprintf("Template %s of set %s is saved; emails use it from now on.", f.Name, f.Set)
		if !c.reloadMail(f) {
			msg = fmt.Sprintf("Template %s of set %s is saved; emails use it once mailca is restarted.", f.Name, f.Set)
		}
	}
	c.redirect(w, r, back, msg)
}

// reloadMail makes the outbox read an edited email template again, and
// reports whether it did. A failure leaves the templates in use as they
// were, so it is logged, not shown: the edit is saved.
func (c *Console) reloadMail(f *templateForm) bool {
	if !f.Mail || c.cfg.ReloadMail == nil {
		return false
	}
	if err := c.cfg.ReloadMail(); err != nil {
		c.log.Error("console: reloading email templates", "err", err)
		return false
	}
	return true
}

// writeTemplate writes f's parts, each through a temporary file renamed
// into place, so that a renderer never reads half a template; an empty
// part of an email removes its override.
func (c *Console) writeTemplate(f *templateForm) error {
	kind, files := "form", map[string]string{f.Name + ".html": f.Parts["body"]}
	if f.Mail {
		kind, files = "mail", map[string]string{}
		for _, part := range mailParts {
			files[f.Name+"."+part] = f.Parts[part]
		}
	}
	dir := filepath.Join(c.cfg.TemplateDir, f.Set, kind)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if strings.TrimSpace(text) == "" {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		tmp, err := os.CreateTemp(dir, "."+name+".*")
		if err != nil {
			return err
		}
		_, werr := tmp.WriteString(text)
		if err := errors.Join(werr, tmp.Close()); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			os.Remove(tmp.Name())
			return err
		}
	}
	return nil
}

// removeTemplate deletes the set's override files of f's template.
func (c *Console) removeTemplate(f *templateForm) error {
	kind, exts := "form", []string{"html"}
	if f.Mail {
		kind, exts = "mail", mailParts
	}
	for _, ext := range exts {
		err := os.Remove(filepath.Join(c.cfg.TemplateDir, f.Set, kind, f.Name+"."+ext))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
