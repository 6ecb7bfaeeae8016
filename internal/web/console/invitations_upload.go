package console

import (
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// uploadForm is the data of the invitation_upload view.
type uploadForm struct {
	Policies []string
	Policy   string
	Recent   []*enrol.Batch
	Errors   map[string]string
	Message  string
}

func (c *Console) renderUpload(w http.ResponseWriter, r *http.Request, status int, f uploadForm) {
	p := auth.FromContext(r.Context())
	var err error
	if f.Policies, err = c.visiblePolicies(r.Context(), p); err != nil {
		c.fail(w, r, err)
		return
	}
	recent, err := c.cfg.Store.RecentBatches(r.Context(), 20)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, b := range recent {
		if p.CanPolicy(b.Policy) {
			f.Recent = append(f.Recent, b)
		}
	}
	c.render(w, r, status, "invitation_upload", f)
}

// invitationUpload shows the CSV upload form and the recent batches.
//
// Pattern: GET /console/invitations/upload (policy).
func (c *Console) invitationUpload(w http.ResponseWriter, r *http.Request) {
	c.renderUpload(w, r, http.StatusOK, uploadForm{Policy: r.URL.Query().Get("policy"), Errors: map[string]string{}})
}

// invitationUploadSubmit reads the upload as a stream (the file part is
// copied to a file of Config.SpoolDir, never held in memory), starts the import in
// the background and sends the browser to the batch's page at once. A file
// refused before any row is read (no email column, not a CSV file, a
// policy without invitations) shows the form again with the reason.
//
// Pattern: POST /console/invitations/upload (multipart: policy, file).
func (c *Console) invitationUploadSubmit(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	f := uploadForm{Errors: map[string]string{}}
	mr, err := r.MultipartReader()
	if err != nil {
		f.Errors["file"] = "choose a CSV file to upload"
		c.renderUpload(w, r, http.StatusBadRequest, f)
		return
	}
	var tmp *os.File
	var filename string
	defer func() {
		if tmp != nil { // not handed to the import
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.fail(w, r, errs.Wrap(errs.Invalid, err, "the upload broke off; try again"))
			return
		}
		switch part.FormName() {
		case "policy":
			b, err := io.ReadAll(io.LimitReader(part, 256))
			if err != nil {
				c.fail(w, r, errs.Wrap(errs.Invalid, err, "the upload broke off; try again"))
				return
			}
			f.Policy = strings.TrimSpace(string(b))
		case "file":
			if tmp != nil || part.FileName() == "" {
				continue
			}
			if tmp, err = c.spool(part); err != nil {
				c.fail(w, r, err) // too large: 413
				return
			}
			filename = path.Base(strings.ReplaceAll(part.FileName(), `\`, "/"))
		}
		part.Close()
	}
	switch {
	case f.Policy == "" || !p.CanPolicy(f.Policy):
		f.Errors["policy"] = "choose one of the policies listed"
	case tmp == nil:
		f.Errors["file"] = "choose a CSV file to upload"
	}
	if len(f.Errors) > 0 {
		c.renderUpload(w, r, http.StatusBadRequest, f)
		return
	}
	id, err := c.startImport(r.Context(), p.Actor(), f.Policy, filename, tmp)
	tmp = nil // the import closes and removes it
	if err != nil {
		if errs.KindOf(err) == errs.Internal {
			c.fail(w, r, err)
			return
		}
		f.Message = errs.Message(err)
		c.renderUpload(w, r, statusOf(err), f)
		return
	}
	c.redirect(w, r, "/console/batches/"+strconv.FormatInt(id, 10), "")
}
