package enrolment

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"time"
)

//go:embed static/*
var staticFS embed.FS

// assetTypes are the files a template set may serve from its static
// folder, with their media types.
var assetTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".svg":   "image/svg+xml",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
}

var assetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Static serves the embedded stylesheet and script.
//
// Pattern: GET /static/{file}.
func (h *Handler) Static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	typ, ok := assetTypes[path.Ext(name)]
	if !ok || !assetName.MatchString(name) {
		h.NotFound(w, r)
		return
	}
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		h.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	serveAsset(w, r, name, typ, time.Time{}, bytes.NewReader(b))
}

// SetStatic serves a file of a template set's static folder
// (<TemplateDir>/<set>/static/<file>): its style.css and the images or
// fonts that refers to.
//
// Pattern: GET /static/sets/{set}/{file}.
func (h *Handler) SetStatic(w http.ResponseWriter, r *http.Request) {
	set, name := r.PathValue("set"), r.PathValue("file")
	typ, ok := assetTypes[path.Ext(name)]
	if h.views.dir == "" || !ok || !setName.MatchString(set) || !assetName.MatchString(name) {
		h.NotFound(w, r)
		return
	}
	// os.Root keeps a symbolic link from reaching outside the folder.
	root, err := os.OpenRoot(filepath.Join(h.views.dir, set, "static"))
	if err != nil {
		h.NotFound(w, r)
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		h.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		h.NotFound(w, r)
		return
	}
	serveAsset(w, r, name, typ, fi.ModTime(), f)
}

// serveAsset serves a static file that browsers revalidate before reuse.
func serveAsset(w http.ResponseWriter, r *http.Request, name, typ string, mod time.Time, content io.ReadSeeker) {
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, mod, content)
}
