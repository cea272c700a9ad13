package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tocsin/tocsin/internal/testenv"
)

// pageFacts is what the browser saw in a rendered report.
type pageFacts struct {
	MissingIDs []string `json:"missing_ids"`
	Timelines  int      `json:"timelines"`
	Accepted   int      `json:"accepted"`
	Rejected   int      `json:"rejected"`
	Brackets   int      `json:"brackets"`
	Shades     int      `json:"shades"`
	Marks      int      `json:"marks"`
	Scripts    int      `json:"scripts"`
	Grades     []string `json:"grades"`
	// Width is the laid-out width of the first timeline: zero means the SVG did not render.
	Width float64 `json:"width"`
	// Layout lists what a reader would see broken: an element wider than its card (outside a
	// scroll box), a page that scrolls sideways, a timeline label cut by the drawing's edge or
	// overlapping another.
	Layout []string `json:"layout"`
}

// Widths the report is checked at: a laptop and a phone.
var checkWidths = []int64{1400, 390}

// CheckHTMLInChromium renders page (the HTML of reports) in headless Chromium from a file:// URL, at
// 1400 and 390 px wide, and fails the test on a console error or exception, on any request that
// leaves the file (the page must be self-contained), on a finding whose ID is not in the DOM, on a
// finding with evidence but no timeline, and on a layout problem (pageFacts.Layout). It returns
// what the page held at 1400 px and, when screenshots is not empty, writes a PNG per width there
// (NAME-1400.png, NAME-390.png for screenshots NAME.png).
func CheckHTMLInChromium(t *testing.T, page []byte, reports []*Report, screenshots string) pageFacts {
	t.Helper()
	chromium := testenv.LookPath(t, "apt-get install chromium", "chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + file

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1400, 1000),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The first Run starts the browser; it must not carry the timeout (see chromedp.Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				problems = append(problems, fmt.Sprintf("console.%s", ev.Type))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				problems = append(problems, "browser log: "+ev.Entry.Text)
			}
		case *network.EventRequestWillBeSent:
			if u := ev.Request.URL; u != url && !strings.HasPrefix(u, "data:") {
				problems = append(problems, "request off the page: "+u)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	var ids []string
	for _, r := range reports {
		for _, f := range r.Findings {
			ids = append(ids, f.ID)
		}
	}
	idsJSON, _ := json.Marshal(ids)
	script := `(() => {
		const ids = ` + string(idsJSON) + `;
		// Closed details hold the evidence tables and the curl commands: they must fit too.
		document.querySelectorAll("details").forEach(d => d.open = true);
		const svg = document.querySelector("svg.timeline");
		const layout = [];
		const name = el => el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined && el.className ? "." + el.className.split(" ").join(".") : "") + ' "' + (el.textContent || "").trim().slice(0, 40) + '"';
		const vw = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > vw + 1) {
			layout.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px in a " + vw + " px window");
		}
		for (const card of document.querySelectorAll(".card")) {
			const c = card.getBoundingClientRect();
			for (const el of card.querySelectorAll("*")) {
				// What sits in a scroll box is reached by scrolling it; the box itself must fit.
				let scrolled = false;
				for (let p = el.parentElement; p && p !== card; p = p.parentElement) {
					const ox = getComputedStyle(p).overflowX;
					if (ox === "auto" || ox === "scroll" || ox === "hidden") { scrolled = true; break; }
				}
				const r = el.getBoundingClientRect();
				if (scrolled || (r.width === 0 && r.height === 0)) continue;
				if (r.right > c.right + 0.5 || r.left < c.left - 0.5) {
					layout.push(name(el) + " is wider than its card (" + Math.round(r.left) + "-" + Math.round(r.right) + " in " + Math.round(c.left) + "-" + Math.round(c.right) + ")");
				}
			}
		}
		for (const tl of document.querySelectorAll("svg.timeline")) {
			const w = tl.viewBox.baseVal.width, h = tl.viewBox.baseVal.height;
			const boxes = [];
			for (const text of tl.querySelectorAll("text")) {
				const b = text.getBBox();
				if (b.width === 0) continue;
				if (b.x < -0.5 || b.x + b.width > w + 0.5 || b.y < -0.5 || b.y + b.height > h + 0.5) {
					layout.push('timeline label "' + text.textContent + '" is cut by the edge of the drawing');
				}
				for (const o of boxes) {
					if (b.x < o.b.x + o.b.width - 1 && o.b.x < b.x + b.width - 1 && b.y < o.b.y + o.b.height - 1 && o.b.y < b.y + b.height - 1) {
						layout.push('timeline labels overlap: "' + o.text + '" and "' + text.textContent + '"');
					}
				}
				boxes.push({b: b, text: text.textContent});
			}
		}
		return {
			missing_ids: ids.filter(id => !document.getElementById(id)),
			timelines: document.querySelectorAll("svg.timeline").length,
			accepted: document.querySelectorAll("svg.timeline > circle.accepted").length,
			rejected: document.querySelectorAll("svg.timeline > circle.rejected").length,
			brackets: document.querySelectorAll("svg.timeline path.bracket").length,
			shades: document.querySelectorAll("svg.timeline > rect.shade").length,
			marks: document.querySelectorAll("svg.timeline g.event").length,
			scripts: document.querySelectorAll("script").length,
			grades: Array.from(document.querySelectorAll(".grade b")).map(b => b.textContent),
			width: svg ? svg.getBoundingClientRect().width : 0,
			layout: layout,
		};
	})()`

	runCtx, cancelRun := context.WithTimeout(ctx, 90*time.Second)
	defer cancelRun()
	var facts pageFacts
	for i, width := range checkWidths {
		if err := chromedp.Do(runCtx, chromedp.EmulateViewport(width, 1000), chromedp.Navigate(url)); err != nil {
			t.Fatalf("load %s at %d px: %v", url, width, err)
		}
		got, err := chromedp.Run(runCtx, chromedp.Evaluate[pageFacts](script))
		if err != nil {
			t.Fatalf("inspect the page at %d px: %v", width, err)
		}
		for _, p := range got.Layout {
			t.Errorf("at %d px: %s", width, p)
		}
		if i == 0 {
			facts = got
		}
		if screenshots != "" {
			png, err := chromedp.Run(runCtx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			if err := os.WriteFile(screenshotPath(screenshots, width), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("page: %s", p)
	}
	if len(facts.MissingIDs) > 0 {
		t.Errorf("finding IDs not in the DOM: %v", facts.MissingIDs)
	}
	withEvidence := 0
	for _, r := range reports {
		for _, f := range r.Findings {
			if len(f.Evidence) > 0 {
				withEvidence++
			}
		}
	}
	if facts.Timelines != withEvidence {
		t.Errorf("%d SVG timelines for %d findings with evidence", facts.Timelines, withEvidence)
	}
	if withEvidence > 0 && facts.Width < 300 {
		t.Errorf("the first timeline is %.0f px wide: it did not lay out", facts.Width)
	}
	if facts.Scripts != 0 {
		t.Errorf("the page has %d script elements; it must work without JavaScript", facts.Scripts)
	}
	if len(facts.Grades) != len(reports) {
		t.Errorf("grades shown %v for %d reports", facts.Grades, len(reports))
	}
	return facts
}

func TestHTMLInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	reports := goldenReports()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, reports); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	if dir := os.Getenv("TOCSIN_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "golden-report.png") // to look at them: TOCSIN_SCREENSHOT_DIR=/tmp go test ...
	}
	facts := CheckHTMLInChromium(t, buf.Bytes(), reports, shot)
	// The golden reports: two closed windows (a bracket, accepted and rejected replays), one that
	// never closed (a shade, no bracket), and an in-flight timeline whose kinds are drawn as labelled
	// marks; the undetermined window has no evidence, so no timeline.
	if facts.Brackets != 2 || facts.Shades != 3 || facts.Rejected != 2 || facts.Accepted != 7 {
		t.Errorf("timeline shapes %+v; want 2 brackets, 3 shades, 2 rejected and 7 accepted replays", facts)
	}
	// Events other than replays are marks: those of the staleness findings (a lifetime, a periodic
	// sync, a token's exp, one never refused) and the in-flight one, the controls and forged
	// requests of auth/missing and jwt/none-algorithm, and the requests of the authz/bola finding.
	if facts.Marks != 33 {
		t.Errorf("%d labelled event marks, want 33", facts.Marks)
	}
	// The vulnerable golden report is incomplete: no grade, a question mark.
	if strings.Join(facts.Grades, ",") != "?,A" {
		t.Errorf("grades %v, want ?,A", facts.Grades)
	}
	for _, width := range checkWidths {
		if st, err := os.Stat(screenshotPath(shot, width)); err != nil || st.Size() < 10000 {
			t.Errorf("screenshot at %d px missing or too small to hold the page: %v", width, err)
		}
	}
}

// screenshotPath names the screenshot of a width: report.png gives report-1400.png.
func screenshotPath(name string, width int64) string {
	return strings.TrimSuffix(name, ".png") + "-" + strconv.FormatInt(width, 10) + ".png"
}
