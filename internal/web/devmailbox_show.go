package web

import (
	"net/http"
	"regexp"
	"strings"
)

// show shows one email: the text part with its links made clickable, and
// the HTML part in a sandboxed frame.
//
// Pattern: GET /dev/mailbox/{id} (loopback only).
func (d *devMailbox) show(w http.ResponseWriter, r *http.Request) {
	m := d.message(w, r)
	if m == nil {
		return
	}
	// The frame is the only thing this page adds to the policy.
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy+"; frame-src 'self'")
	d.render(w, r, "dev_show", struct {
		Title   string
		Message *DevMessage
		Text    []textPart
	}{"Development mailbox: " + m.Subject, m, linkify(m.Text)})
}

// textPart is a run of an email's text: plain, or a link when URL is set.
type textPart struct {
	Text string
	URL  string
}

var urlPattern = regexp.MustCompile(`https?://[^\s<>"']+`)

// linkify splits text into plain runs and links. The template escapes
// both and only lets http and https URLs into an href.
func linkify(text string) []textPart {
	var parts []textPart
	for text != "" {
		loc := urlPattern.FindStringIndex(text)
		if loc == nil {
			parts = append(parts, textPart{Text: text})
			break
		}
		u := strings.TrimRight(text[loc[0]:loc[1]], ".,;:!?)]")
		if loc[0] > 0 {
			parts = append(parts, textPart{Text: text[:loc[0]]})
		}
		parts = append(parts, textPart{Text: u, URL: u})
		text = text[loc[0]+len(u):]
	}
	return parts
}
