package console

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image/png"
	"net/http"
	"strings"

	"github.com/pquerna/otp"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
)

// joinPage is the data of the join view: the first-run setup of the first
// administrator, or an invited account's enrolment.
type joinPage struct {
	Join *auth.Join
	// Form values, shown again after an error; never the password.
	Email, Name string
	// The TOTP secret to enrol in an authenticator app: as text, as an
	// otpauth URL and as a QR code (a data: URL of a PNG). Sealed is the
	// secret bound to the link, which the form carries back.
	Secret, KeyURL string
	QR             string
	Sealed         string
	// Errors by field (email, name, password, code, secret), and Error for
	// the form as a whole.
	Errors map[string]string
	Error  string
}

// showJoin shows the form that creates an account from a join or setup
// link, with a new TOTP secret. It does not spend the link.
//
// Pattern: GET /console/join/{token}.
func (c *Console) showJoin(w http.ResponseWriter, r *http.Request) {
	noReferrer(w)
	j, err := c.cfg.Auth.OpenJoin(r.Context(), r.PathValue("token"))
	if err != nil {
		c.joinFailed(w, r, err)
		return
	}
	d := &joinPage{Join: j}
	if err := c.newTOTP(d, r.PathValue("token"), j.Email); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "join", d)
}

// submitJoin creates the account, spending the link, and sends the new
// account holder to the login page; errors show the form again with the
// same TOTP secret.
//
// Pattern: POST /console/join/{token}.
func (c *Console) submitJoin(w http.ResponseWriter, r *http.Request) {
	noReferrer(w)
	token := r.PathValue("token")
	j, err := c.cfg.Auth.OpenJoin(r.Context(), token)
	if err != nil {
		c.joinFailed(w, r, err)
		return
	}
	d := &joinPage{Join: j, Email: strings.TrimSpace(r.PostFormValue("email")), Name: r.PostFormValue("name")}
	if !j.Setup {
		d.Email = j.Email
	}
	secret := r.PostFormValue("totp_secret")
	password := r.PostFormValue("password")
	if password != r.PostFormValue("password2") {
		d.Errors = map[string]string{"password2": "the two passwords differ; type the same password twice"}
	} else {
		_, err = c.cfg.Auth.Join(r.Context(), token, d.Email, d.Name, password, secret, r.PostFormValue("code"), c.clientAddr(r))
		if err == nil {
			if j.Setup && c.cfg.AfterSetup != nil {
				c.cfg.AfterSetup()
			}
			c.redirect(w, r, "/console/login", "Your account is ready. Log in with the next code your authenticator app shows.")
			return
		}
		if errors.Is(err, auth.ErrBadLink) {
			c.joinFailed(w, r, err)
			return
		}
		if k := errs.KindOf(err); k != errs.Invalid && k != errs.Conflict {
			c.fail(w, r, err)
			return
		}
		d.Errors = fieldErrors(err)
	}
	// The same secret again, so that the app enrolled already stays right;
	// a secret that is not one of ours gets a new one.
	if !c.keepTOTP(d, token, secret, r.PostFormValue("totp_url")) {
		if err := c.newTOTP(d, token, j.Email); err != nil {
			c.fail(w, r, err)
			return
		}
		if d.Errors["secret"] == "" && d.Errors["code"] == "" {
			d.Errors["code"] = "a new secret was made: add it to your authenticator app and type its code"
		}
	}
	c.render(w, r, http.StatusBadRequest, "join", d)
}

// joinFailed answers a link that cannot be used.
func (c *Console) joinFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrBadLink) {
		c.failStatus(w, r, http.StatusNotFound, "Link not valid", "this link is unknown, used or expired; ask an administrator for a new one")
		return
	}
	c.fail(w, r, err)
}

// newTOTP puts a new TOTP secret for the join token in d.
func (c *Console) newTOTP(d *joinPage, token, email string) error {
	label := email
	if label == "" {
		label = "administrator"
	}
	k, err := c.cfg.Auth.NewTOTPKey(token, label)
	if err != nil {
		return err
	}
	d.Secret, d.KeyURL, d.Sealed = k.Secret, k.URL, k.Sealed
	d.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(k.QR)
	return nil
}

// keepTOTP puts the sealed secret with its otpauth URL (both from the
// form) in d again, when the seal is ours for token and they agree; false
// otherwise.
func (c *Console) keepTOTP(d *joinPage, token, sealed, keyURL string) bool {
	secret, ok := c.cfg.Auth.UnsealSecret(token, sealed)
	if !ok || secret == "" || len(keyURL) > 1000 || !strings.HasPrefix(keyURL, "otpauth://totp/") {
		return false
	}
	k, err := otp.NewKeyFromURL(keyURL)
	if err != nil || k.Secret() != secret {
		return false
	}
	img, err := k.Image(200, 200)
	if err != nil {
		return false
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return false
	}
	d.Secret, d.KeyURL, d.Sealed = secret, keyURL, sealed
	d.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
	return true
}

// fieldErrors sorts a validation error by the field its message names
// ("password: at least 12 characters"); a message naming none is the
// form's.
func fieldErrors(err error) map[string]string {
	msg := errs.Message(err)
	out := map[string]string{}
	if field, rest, ok := strings.Cut(msg, ": "); ok {
		switch f := strings.ToLower(field); f {
		case "email", "email address":
			out["email"] = rest
			return out
		case "name", "password", "code", "role", "policies":
			out[f] = rest
			return out
		case "authenticator secret":
			out["secret"] = rest
			return out
		}
	}
	out["form"] = msg
	return out
}

// noReferrer keeps a page's URL, which carries a link token, out of the
// Referer of the requests it leads to.
func noReferrer(w http.ResponseWriter) { w.Header().Set("Referrer-Policy", "no-referrer") }
