package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
)

// subRouter stands for the console: a handler with routes of its own.
type subRouter struct{}

func (subRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:")
	w.WriteHeader(http.StatusTeapot)
}

func (subRouter) Route(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/console/join/") {
		return "GET /console/join/{token}"
	}
	return ""
}

type routes struct {
	mu   sync.Mutex
	seen []string
}

func (o *routes) ObserveRequest(method, route string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, route)
}

// TestConsoleMount checks a handler mounted as Config.Console gets the
// requests under /console/, sets its own Content-Security-Policy over the
// server's, and has the request log and metrics name its route pattern,
// never the path with its token.
func TestConsoleMount(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	hier := testkit.NewHierarchy(t, keys.ECDSAP256)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, hier, db), PublicURL: "https://mailca.example", ServerKeyType: keys.ECDSAP256})
	logs := &testkit.LogBuffer{}
	obs := &routes{}
	h, err := web.New(web.Config{Enrol: svc, Console: subRouter{}, Requests: obs,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	const token = "c2VjcmV0LXRva2VuLW5vdC1mb3ItbG9ncw"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/join/"+token, nil))
	if w.Code != http.StatusTeapot {
		t.Fatalf("GET /console/join/... = %d, want the mounted handler's 418", w.Code)
	}
	if got := w.Header().Get("Content-Security-Policy"); got != "default-src 'none'; img-src 'self' data:" {
		t.Errorf("Content-Security-Policy = %q, want the mounted handler's", got)
	}
	if got := w.Header().Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want the server's DENY kept", got)
	}
	if l := logs.String(); strings.Contains(l, token) || !strings.Contains(l, `"route":"GET /console/join/{token}"`) {
		t.Errorf("request log: want the mounted route's pattern, no token:\n%s", l)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/other", nil))
	if !strings.Contains(logs.String(), `"route":"/console/"`) {
		t.Errorf("a path the mounted handler has no route for is not logged as /console/:\n%s", logs.String())
	}
	if strings.Join(obs.seen, ",") != "/console/join/{token},/console/" {
		t.Errorf("observed routes = %q, want /console/join/{token},/console/", obs.seen)
	}
}
