package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian installs Chromium; MAILCA_CHROMIUM overrides it.
const ChromiumPath = "/usr/bin/chromium"

// ScreenshotDir is the git-ignored folder, relative to the test's package
// directory, that Screenshot writes to; MAILCA_SCREENSHOTS overrides it.
const ScreenshotDir = "testdata/screenshots"

// BrowserTimeout bounds every step a Tab runs (a navigation, a click, a
// wait): a page that never comes, or a browser that hangs, fails the test
// instead of hanging CI.
const BrowserTimeout = 60 * time.Second

// Browser is one headless Chromium process, started for one test (no
// sandbox, no GPU, no QUIC, no background networking, component updates
// or sync) with a fresh user data directory of its own, and ended with
// every process it started when the test ends.
type Browser struct {
	tb  testing.TB
	ctx context.Context // the browser's own first tab; the parent of every Tab
}

// NewBrowser starts Chromium. When it is not installed the test is skipped,
// or fails when CI=true.
func NewBrowser(tb testing.TB) *Browser {
	tb.Helper()
	path := chromiumPath(tb)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1280, 900),
		// No UserDataDir: the allocator makes a fresh temporary one for this
		// browser, and removes it, with any child process still using it,
		// when the browser ends.
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(tb.Logf))
	b := &Browser{tb: tb, ctx: ctx}
	tb.Cleanup(func() {
		// Cancel closes the browser gracefully; cancelAlloc kills what is
		// left and waits until the process and its directory are gone.
		done := make(chan struct{})
		go func() {
			cancel()
			cancelAlloc()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(BrowserTimeout):
			tb.Errorf("testkit: Chromium did not exit within %v", BrowserTimeout)
		}
	})
	if err := firstRun(ctx, cancel); err != nil {
		tb.Fatalf("testkit: starting Chromium (%s): %v", path, err)
	}
	return b
}

// firstRun makes the first chromedp run on ctx, which binds the browser or
// tab to ctx itself (a timeout context there would close it when the
// timeout ends): a watchdog cancels ctx instead when the start hangs.
func firstRun(ctx context.Context, cancel context.CancelFunc) error {
	watchdog := time.AfterFunc(BrowserTimeout, cancel)
	err := chromedp.Do(ctx)
	if !watchdog.Stop() {
		return fmt.Errorf("no answer within %v", BrowserTimeout)
	}
	return err
}

func chromiumPath(tb testing.TB) string {
	tb.Helper()
	path := os.Getenv("MAILCA_CHROMIUM")
	if path == "" {
		path = ChromiumPath
	}
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("testkit: Chromium is required in CI: %s not found (apt-get install chromium)", path)
	}
	tb.Skipf("testkit: Chromium not installed (%s)", path)
	return ""
}

// Tab is a page in a browser context of its own: its cookies, storage and
// cache are not shared with any other Tab, as if another person used
// another computer.
type Tab struct {
	tb   testing.TB
	name string // names its screenshots
	ctx  context.Context

	mu       sync.Mutex
	problems []string // script errors and browser log errors, such as CSP violations
}

// NewTab opens a tab in a new browser context. name (for example "admin"
// or "user") prefixes the names of its screenshots.
func (b *Browser) NewTab(name string) *Tab {
	b.tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.tb.Cleanup(cancel)
	if err := firstRun(ctx, cancel); err != nil {
		b.tb.Fatalf("testkit: opening a tab for %s: %v", name, err)
	}
	t := &Tab{tb: b.tb, name: name, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return // the tab is closing
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() || strings.HasSuffix(m.URL, "/favicon.ico") {
				continue
			}
			t.mu.Lock()
			t.problems = append(t.problems, fmt.Sprintf("%s at %s: %s", m.Type, redactURL(m.URL), m.Text))
			t.mu.Unlock()
		}
	}()
	return t
}

// CheckConsole fails the test when a page of the tab has thrown an
// uncaught exception or the browser has logged an error for it, such as a
// Content-Security-Policy violation or a stylesheet or script that did not
// load (the site's missing favicon.ico aside).
func (t *Tab) CheckConsole() {
	t.tb.Helper()
	for _, p := range t.Problems() {
		t.tb.Errorf("testkit: browser %s: %s", t.name, p)
	}
}

// Problems returns what CheckConsole reports, so far.
func (t *Tab) Problems() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.problems)
}

// Context returns the tab's chromedp context, for actions this type has no
// method for; bound each use with a timeout.
func (t *Tab) Context() context.Context { return t.ctx }

// Do runs steps in order, failing the test at the first error or when they
// take longer than BrowserTimeout.
func (t *Tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, BrowserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.fail(err)
	}
}

// Get runs one action on tab and returns its value, failing the test on an
// error or after BrowserTimeout.
func Get[T any](tab *Tab, a chromedp.Action[T]) T {
	tab.tb.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, BrowserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tab.fail(err)
	}
	return v
}

func (t *Tab) fail(err error) {
	t.tb.Helper()
	loc := "?"
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	if l, lerr := chromedp.Run(ctx, chromedp.Location()); lerr == nil {
		loc = l
	}
	// The heading tells which page it is (an error page, a login form)
	// without copying the page, which may show a password, into the log.
	heading, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("h1") || {textContent: ""}).textContent.trim()`))
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (no answer within %v)", err, BrowserTimeout)
	}
	t.tb.Fatalf("testkit: browser %s at %s (heading %q): %v", t.name, redactURL(loc), heading, err)
}

// redactURL cuts the last path segment of u when it is long enough to be a
// link token, so that a failure message does not carry one into CI logs.
func redactURL(u string) string {
	if i := strings.LastIndexByte(u, '/'); i >= 0 && len(u)-i-1 >= 32 {
		return u[:i+1] + "…"
	}
	return u
}

// Cookies returns the cookies the tab's browser context holds for the
// page it shows, including HttpOnly ones, which scripts cannot read.
func (t *Tab) Cookies() []*network.Cookie {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, BrowserTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.fail(err)
	}
	return res.Cookies
}

// Open navigates to url and waits until the document's body is ready. It
// fails the test unless the page (after any redirect) answers 200 OK.
func (t *Tab) Open(url string) {
	t.tb.Helper()
	if status := t.OpenStatus(url); status != 200 {
		t.fail(fmt.Errorf("GET %s: status %d", redactURL(url), status))
	}
}

// OpenStatus navigates to url, waits until the document's body is ready,
// and returns the HTTP status of the page it ended at.
func (t *Tab) OpenStatus(url string) int {
	t.tb.Helper()
	resp := Get(t, chromedp.NavigateResponse(url))
	t.Do(chromedp.WaitReady(chromedp.CSS("body")))
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Location returns the URL the tab shows.
func (t *Tab) Location() string {
	t.tb.Helper()
	return Get(t, chromedp.Location())
}

// Text returns the visible text of the first element matching the CSS
// selector, waiting for it to appear.
func (t *Tab) Text(css string) string {
	t.tb.Helper()
	return Get(t, chromedp.Text(chromedp.CSS(css)))
}

// Has reports whether an element matches the CSS selector now, without
// waiting.
func (t *Tab) Has(css string) bool {
	t.tb.Helper()
	return Get(t, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%q) !== null", css)))
}

// Fill sets the value of each form field named by the map's keys (CSS
// selectors) and fires their input and change events.
func (t *Tab) Fill(fields map[string]string) {
	t.tb.Helper()
	for sel, v := range fields {
		t.Do(chromedp.SetValue(chromedp.CSS(sel), v))
	}
}

// Submit clicks the element matching the CSS selector (a submit button)
// and waits for the page it leads to.
func (t *Tab) Submit(css string) {
	t.tb.Helper()
	Get(t, chromedp.Evaluate[string](`document.documentElement.dataset.testkitOld = "1"`))
	t.Do(chromedp.Click(chromedp.CSS(css)))
	// The old document carries the mark; the new one does not. The check
	// runs from here, not as a polling script in the page, which the
	// navigation it waits for would destroy.
	t.waitFor(`document.readyState === "complete" && document.documentElement.dataset.testkitOld === undefined`)
}

// WaitFor evaluates the JavaScript expression until it is true, across
// page loads, failing the test after BrowserTimeout.
func (t *Tab) WaitFor(expr string) {
	t.tb.Helper()
	t.waitFor(expr)
}

func (t *Tab) waitFor(expr string) {
	t.tb.Helper()
	deadline := time.Now().Add(BrowserTimeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if t.ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.fail(fmt.Errorf("waiting for %s: %v", expr, err))
}

// Screenshot writes a full-page PNG of the tab to ScreenshotDir as
// <test>/<tab>-<name>.png and returns its path.
func (t *Tab) Screenshot(name string) string {
	t.tb.Helper()
	png := Get(t, chromedp.FullScreenshot(100))
	dir := os.Getenv("MAILCA_SCREENSHOTS")
	if dir == "" {
		dir = ScreenshotDir
	}
	dir = filepath.Join(dir, fileName(t.tb.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.tb.Fatal(err)
	}
	path := filepath.Join(dir, fileName(t.name+"-"+name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.tb.Fatal(err)
	}
	return path
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(s string) string { return unsafeName.ReplaceAllString(s, "_") }

// Download clicks the element matching the CSS selector (a link to a file,
// including a data: URL with a download attribute), waits until the browser
// has saved the file, and returns its bytes. The file goes to a temporary
// directory of the test.
func (t *Tab) Download(css string) []byte {
	t.tb.Helper()
	dir := t.tb.TempDir()
	ctx, cancel := context.WithTimeout(t.ctx, BrowserTimeout)
	defer cancel()
	bctx := chromedp.FromContext(t.ctx).BrowserContextID
	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: bctx,
		DownloadPath: dir, EventsEnabled: new(true),
	})
	if err != nil {
		t.fail(err)
	}
	// Subscribed before the click, so that no event is missed.
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		t.fail(err)
	}
	for ev, err := range progress {
		if err != nil {
			t.fail(err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			// allowAndName names the file by the download's GUID.
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.tb.Fatalf("testkit: reading the downloaded file: %v", err)
			}
			return b
		case browser.DownloadProgressStateCanceled:
			t.tb.Fatalf("testkit: the browser canceled the download of %s", css)
		}
	}
	t.fail(ctx.Err())
	return nil
}
