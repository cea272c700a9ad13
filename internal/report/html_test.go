package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
}

// CheckHTMLInChromium renders page (the HTML of reports) in headless Chromium from a file:// URL and
// fails the test on a console error or exception, on any request that leaves the file (the page must
// be self-contained), on a finding whose ID is not in the DOM, or on a finding with evidence but no
// timeline. It returns what the page held and, when screenshot is not empty, writes a PNG there.
func CheckHTMLInChromium(t *testing.T, page []byte, reports []*Report, screenshot string) pageFacts {
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
		chromedp.WindowSize(1100, 1400),
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
		const svg = document.querySelector("svg.timeline");
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
		};
	})()`

	runCtx, cancelRun := context.WithTimeout(ctx, 60*time.Second)
	defer cancelRun()
	if err := chromedp.Do(runCtx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	facts, err := chromedp.Run(runCtx, chromedp.Evaluate[pageFacts](script))
	if err != nil {
		t.Fatalf("inspect the page: %v", err)
	}
	if screenshot != "" {
		png, err := chromedp.Run(runCtx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(screenshot, png, 0o644); err != nil {
			t.Fatal(err)
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
		shot = filepath.Join(dir, "golden-report.png") // to look at it: TOCSIN_SCREENSHOT_DIR=/tmp go test ...
	}
	facts := CheckHTMLInChromium(t, buf.Bytes(), reports, shot)
	// The golden reports: two closed windows (a bracket, accepted and rejected replays), one that
	// never closed (a shade, no bracket), and an in-flight timeline whose kinds are drawn as labelled
	// marks; the undetermined window has no evidence, so no timeline.
	if facts.Brackets != 2 || facts.Shades != 3 || facts.Rejected != 2 || facts.Accepted != 7 {
		t.Errorf("timeline shapes %+v; want 2 brackets, 3 shades, 2 rejected and 7 accepted replays", facts)
	}
	// Events other than replays are marks: 8 + 7 + 4 + 1 in the golden findings.
	if facts.Marks != 20 {
		t.Errorf("%d labelled event marks, want 20", facts.Marks)
	}
	// The vulnerable golden report is incomplete: no grade, a question mark.
	if strings.Join(facts.Grades, ",") != "?,A" {
		t.Errorf("grades %v, want ?,A", facts.Grades)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
		t.Errorf("screenshot %s missing or too small to hold the page: %v", shot, err)
	}
}
