package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from the current writers")

// goldenReports builds, by hand and with fixed times, two reports that exercise every part of every
// writer: a vulnerable target with a finding of each shape (closed window, a window that never
// closed, an in-flight timeline with event kinds the staleness checks never use) and a check of each
// status, then a clean target.
func goldenReports() []*Report {
	start := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	item := "http://127.0.0.1:8787/items/4f2a"
	replay := func(at float64, status int, outcome string) finding.Event {
		return finding.Event{AtMS: at, Kind: finding.EventReplay, HTTP: &finding.Exchange{
			Method: "GET", URL: item, Token: "[token:1a2b3c4d]", Status: status, Outcome: outcome,
			SentMS: at, ReceivedMS: at + 0.8, BodyExcerpt: `{"id":"4f2a","owner":"alice"}`,
		}}
	}
	f := func(v float64) *float64 { return &v }
	bracket := func(lo, hi float64) *finding.Bracket { return &finding.Bracket{LoMS: lo, HiMS: &hi} }
	acked := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	revoked := finding.Finding{
		ID:       finding.StableID("toctou/revoked-token-accepted", "GET /items/{{item_id}}", "alice"),
		Check:    "toctou/revoked-token-accepted",
		Title:    "Revoked token still accepted",
		Severity: finding.Medium,
		CWE:      "CWE-613",
		Endpoint: "GET /items/{{item_id}}",
		Probe:    "read-item",
		Identity: "alice",
		Location: &finding.Location{File: "api/tocsin.yaml", Line: 88, Column: 3, EndColumn: 12},
		Summary: "A revoked token was still honoured by GET /items/{{item_id}} for a fixed lifetime from the request that filled the API's cache: " +
			"[1999.3, 2001.2] ms from that request (in pass 3 of 3 it was honoured until [1978.9, 1980.6] ms after the revocation was acknowledged); worst case 2001.2 ms.",
		SeverityReason: "worst-case exposure 2001.2 ms (lifetime-from-first-use), 1 s or more, read-only probe",
		Window: &finding.Window{
			Change: "revocation", Cause: finding.CauseLifetime,
			CauseReason: "across 3 passes the end kept a fixed time from the token's first use and moved when the revocation was made later: a cache entry with a lifetime from its fill (an introspection or permission cache TTL)",
			Frame:       finding.FrameFirstUse, Parameter: "lifetime", Bracket: bracket(1999.274, 2001.196), BracketPass: 3,
			WorstCaseMS: 2001.196, WorstCase: "a token revoked right after its first use is honoured for the whole lifetime",
			LastAcceptedMS: 1978.912, FirstRejectedMS: 1980.606, MaxWaitMS: 60000, FillToChangeMS: 20.59,
			WallMS: 4363.2, Schedule: finding.ScheduleOverlapped, SpareTokens: 2,
			ScheduleReason: "1 pass after pass 1 used 1 token armed while pass 1 still replayed; 1 pass had to begin after the one before (see each pass's why)",
			Passes: []finding.Pass{
				{LastAcceptedMS: 1550.206, FirstRejectedMS: 2170.424, Replays: 14, FillToChangeMS: 0.442, AcknowledgedAt: acked(120),
					TokenMintedMS: -0.49, TokenExpMS: f(899880.1), FillSentMS: -0.442, FillReceivedMS: -0.351, FillCertain: true, ChangeSentMS: -0.3,
					FirstReplayMS: 0.012, LastReplayMS: 2169.6, Bracket: bracket(1550.557, 2170.866), Why: "the first pass: replays on a coarse schedule, to find the window"},
				{LastAcceptedMS: 1993.506, FirstRejectedMS: 2005.54, Replays: 12, FillToChangeMS: 0.414, AcknowledgedAt: acked(2300),
					TokenMintedMS: -0.47, TokenExpMS: f(899700.2), FillSentMS: -0.414, FillReceivedMS: -0.33, FillCertain: true, ChangeSentMS: -0.28,
					FirstReplayMS: 1412.3, LastReplayMS: 2004.7, Bracket: bracket(1993.836, 2005.954), ArmedAheadMS: 403.2,
					Why: "armed 403.2 ms after pass 1's acknowledgement, while it replayed; the passes before it put its end ahead, so its replays were aimed there without waiting a window"},
				{LastAcceptedMS: 1978.912, FirstRejectedMS: 1980.606, Replays: 6, FillToChangeMS: 20.59, AcknowledgedAt: acked(4362),
					TokenMintedMS: -20.66, TokenExpMS: f(899638.4), FillSentMS: -20.59, FillReceivedMS: -20.362, FillCertain: true, ChangeSentMS: -0.41,
					WaitBeforeMS: 36.1, GapMS: 20, FirstReplayMS: 1969.2, LastReplayMS: 1979.8, Bracket: bracket(1999.274, 2001.196),
					Why: "begun after the previous pass: no token armed ahead was young enough for its end to lie ahead; separating the causes: a gap between the first use and the change"},
			},
		},
		Requests: 44,
		Evidence: []finding.Event{
			{AtMS: -4243.1, Kind: finding.EventControl, Detail: "with no token", HTTP: &finding.Exchange{
				Method: "GET", URL: item, Token: "(none)", Status: 401, Outcome: "rejected", SentMS: -4243.1, ReceivedMS: -4242.9}},
			{AtMS: -4242.8, Kind: finding.EventControl, Detail: "with a garbage token", HTTP: &finding.Exchange{
				Method: "GET", URL: item, Token: "[garbage token]", Status: 401, Outcome: "rejected", SentMS: -4242.8, ReceivedMS: -4242.6}},
			{AtMS: -4242, Kind: finding.EventNote, Detail: "pass 1, acknowledged here: honoured until [1550.2, 2170.4] ms after its acknowledgement; lifetime [1550.6, 2170.9] ms counted from the request that filled the API's cache"},
			{AtMS: -2062, Kind: finding.EventNote, Detail: "pass 2, acknowledged here: honoured until [1993.5, 2005.5] ms after its acknowledgement; lifetime [1993.8, 2006.0] ms counted from the request that filled the API's cache"},
			{AtMS: -20.66, Kind: finding.EventToken, Detail: "fresh token for alice (oauth2 password)"},
			{AtMS: -20.59, Kind: finding.EventFill, Detail: "probe before the change", HTTP: &finding.Exchange{
				Method: "GET", URL: item, Token: "[token:1a2b3c4d]", Status: 200, Outcome: "accepted", SentMS: -20.59, ReceivedMS: -20.362}},
			{AtMS: -0.41, Kind: finding.EventChangeSent, Detail: "revocation sent (rfc7009)"},
			{AtMS: 0, Kind: finding.EventChangeAcked, Detail: "revocation acknowledged"},
			replay(1969.2, 200, "accepted"),
			replay(1974.06, 200, "accepted"),
			replay(1978.912, 200, "accepted"),
			replay(1979.806, 401, "rejected"),
		},
		Remediation: "The API caches the token's introspection for a fixed time from the first use.\nCheck the token's state at the moment of the action.\n- Couple cache invalidation with revocation.\n" +
			"Idioms: Go net/http: guard.Do(ctx, jti, scope, action) <checks> & pins the grant.",
		References: []string{"https://cwe.mitre.org/data/definitions/613.html", "https://www.rfc-editor.org/rfc/rfc7009"},
	}
	// A denylist pulled every 3 s, and a token verified offline until its exp: the other causes'
	// lines in every writer.
	periodic := finding.Finding{
		ID:       finding.StableID("toctou/revoked-token-accepted", "GET /reports/summary", "alice"),
		Check:    "toctou/revoked-token-accepted",
		Title:    "Revoked token still accepted",
		Severity: finding.Medium,
		CWE:      "CWE-613",
		Endpoint: "GET /reports/summary",
		Identity: "alice",
		Summary: "A revoked token was still honoured by GET /reports/summary until a periodic refresh: over 3 passes the window ranged from [41.2, 47.9] ms to " +
			"[2961.0, 2966.3] ms after the revocation was acknowledged; estimated period [2996.1, 3003.8] ms; worst case 3003.8 ms.",
		SeverityReason: "worst-case exposure 3003.8 ms (periodic), 1 s or more, read-only probe",
		Window: &finding.Window{
			Change: "revocation", Cause: finding.CausePeriodic,
			CauseReason: "across 3 passes the end kept no fixed time from the first use, the revocation or exp; it fell on a grid of refreshes: the API learns of the revocation at the next run of a periodic sync",
			Frame:       finding.FrameChangeAcked, Parameter: "window", Bracket: bracket(2961.0, 2966.3), BracketPass: 2,
			WorstCaseMS: 3003.8, WorstCase: "a revocation made just after a refresh waits a whole period for the next one",
			Periodic: &finding.Periodic{Shortest: *bracket(41.2, 47.9), Longest: *bracket(2961.0, 2966.3), Period: bracket(2996.1, 3003.8),
				PeriodNote: "the largest period, no shorter than the longest window, of which every two ends are whole multiples apart"},
			LastAcceptedMS: 2961.0, FirstRejectedMS: 2966.3, MaxWaitMS: 60000, FillToChangeMS: 0.5,
			Passes: []finding.Pass{
				{LastAcceptedMS: 1107.1, FirstRejectedMS: 1550.5, Replays: 13, FillToChangeMS: 0.5, TokenMintedMS: -0.6, FillSentMS: -0.5, FillReceivedMS: -0.4, FillCertain: true, ChangeSentMS: -0.3, FirstReplayMS: 0, LastReplayMS: 1550.1, Bracket: bracket(1107.1, 1550.5)},
				{LastAcceptedMS: 2961.0, FirstRejectedMS: 2966.3, Replays: 9, FillToChangeMS: 0.5, TokenMintedMS: -0.6, FillSentMS: -0.5, FillReceivedMS: -0.4, FillCertain: true, ChangeSentMS: -0.3, FirstReplayMS: 2900.2, LastReplayMS: 2966.0, Bracket: bracket(2961.0, 2966.3)},
				{LastAcceptedMS: 41.2, FirstRejectedMS: 47.9, Replays: 5, FillToChangeMS: 2912.7, TokenMintedMS: -2912.8, FillSentMS: -2912.7, FillReceivedMS: -2912.6, FillCertain: true, ChangeSentMS: -0.3, GapMS: 2912.1, FirstReplayMS: 30.1, LastReplayMS: 47.5, Bracket: bracket(41.2, 47.9)},
			},
		},
		Requests: 38,
		Evidence: []finding.Event{
			{AtMS: 0, Kind: finding.EventChangeAcked, Detail: "revocation acknowledged"},
			replay(2961.0, 200, "accepted"),
			replay(2965.5, 401, "rejected"),
		},
		Remediation: "The API refreshes its revocation list periodically.",
	}
	exp := start.Add(15 * time.Minute)
	expiry := finding.Finding{
		ID:       finding.StableID("toctou/revoked-token-accepted", "GET /reports/daily", "alice"),
		Check:    "toctou/revoked-token-accepted",
		Title:    "Revoked token still accepted",
		Severity: finding.Medium,
		CWE:      "CWE-613",
		Endpoint: "GET /reports/daily",
		Identity: "alice",
		Summary: "A revoked token was still honoured by GET /reports/daily until the token's own exp (2026-03-14T09:41:53Z), which the API checks offline: " +
			"the end lies [-0.8, 1.2] ms after exp (in pass 2 of 2 it was honoured until [899210.2, 899212.2] ms after the revocation was acknowledged); worst case the token's lifetime, 900001.2 ms.",
		SeverityReason: "worst-case exposure 900001.2 ms (token-expiry), 1 s or more, read-only probe",
		Window: &finding.Window{
			Change: "revocation", Cause: finding.CauseExpiry,
			CauseReason: "across 2 passes the end kept a fixed offset from each token's own exp, not from its use or the revocation: the API verifies the token offline and honours it until it expires",
			Frame:       finding.FrameTokenExp, Parameter: "leeway", Bracket: bracket(-0.8, 1.2), BracketPass: 2,
			WorstCaseMS: 900001.2, WorstCase: "a token revoked right after it was issued is honoured until the token's exp: its whole lifetime",
			TokenExp: &exp, TokenLifetimeMS: 900000,
			LastAcceptedMS: 899210.2, FirstRejectedMS: 899212.2, MaxWaitMS: 900000, FillToChangeMS: 0.4,
			Passes: []finding.Pass{
				{LastAcceptedMS: 899100, FirstRejectedMS: 899300, Replays: 30, FillToChangeMS: 0.4, TokenMintedMS: -0.5, TokenExpMS: f(899200.3), FillSentMS: -0.4, FillReceivedMS: -0.3, FillCertain: true, ChangeSentMS: -0.2, FirstReplayMS: 0, LastReplayMS: 899299, Bracket: bracket(-100.3, 99.7)},
				{LastAcceptedMS: 899210.2, FirstRejectedMS: 899212.2, Replays: 8, FillToChangeMS: 0.4, TokenMintedMS: -0.5, TokenExpMS: f(899211), FillSentMS: -0.4, FillReceivedMS: -0.3, FillCertain: true, ChangeSentMS: -0.2, WaitBeforeMS: 512.5, FirstReplayMS: 899190, LastReplayMS: 899211.8, Bracket: bracket(-0.8, 1.2)},
			},
		},
		Requests:    52,
		Remediation: "The API verifies the token offline and never checks revocation.",
	}
	never := finding.Finding{
		ID:       finding.StableID("toctou/scope-downgrade-ignored", "DELETE /items/{{item_id}}", "bob"),
		Check:    "toctou/scope-downgrade-ignored",
		Title:    "Removed scope or role still honoured",
		Severity: finding.Critical,
		CWE:      "CWE-367",
		Endpoint: "DELETE /items/{{item_id}}",
		Probe:    "delete-item",
		Identity: "bob",
		Location: &finding.Location{File: "api/tocsin.yaml", Line: 101, Column: 3, EndColumn: 14},
		Summary: "A privilege removed by a downgrade was still honoured by DELETE /items/{{item_id}} by the last replay, sent 60.0 s after the downgrade was acknowledged " +
			"(never refused within 60.0 s); the replays stopped there because the last replay went out at limits.max_window (1m0s).",
		Window: &finding.Window{Change: "downgrade", Cause: finding.CauseNever, CauseReason: "no replay was refused: the last replay went out at limits.max_window (1m0s)",
			Frame: finding.FrameChangeAcked, Parameter: "window", Bracket: &finding.Bracket{LoMS: 60000.5}, BracketPass: 1,
			WorstCaseMS: 60000.5, WorstCase: "still honoured when the replays stopped: the exposure is at least this, and may be unbounded",
			Reach:          &finding.Reach{Pass: 1, LastReplayMS: 60000.5, StoppedBy: finding.StoppedMaxWindow, Detail: "the last replay went out at limits.max_window (1m0s)"},
			LastAcceptedMS: 60000.5, Never: true, MaxWaitMS: 60000, FillToChangeMS: 1.2,
			Passes: []finding.Pass{{LastAcceptedMS: 60000.5, Never: true, Replays: 9, FillToChangeMS: 1.2, TokenMintedMS: -1.5, FillSentMS: -1.2, FillReceivedMS: -1.0,
				ChangeSentMS: -0.6, FirstReplayMS: 0, LastReplayMS: 60000.5, Bracket: &finding.Bracket{LoMS: 60000.5}}}},
		SeverityReason: "still honoured by a replay at the max window (60.0 s after the change), destructive probe",
		Requests:       12,
		Evidence: []finding.Event{
			{AtMS: -1.2, Kind: finding.EventFill, Detail: "probe before the change"},
			{AtMS: -0.6, Kind: finding.EventChangeSent, Detail: "downgrade sent (http)"},
			{AtMS: 0, Kind: finding.EventChangeAcked, Detail: "downgrade acknowledged"},
			replay(15000, 204, "accepted"),
			replay(30000, 204, "accepted"),
			replay(60000.5, 204, "accepted"),
			{AtMS: 60010, Kind: finding.EventRestore, Detail: "bob restored"},
		},
		Remediation: "Read the identity's current scopes when you authorize the action.",
	}
	// A future in-flight check: kinds the staleness checks never emit must still render.
	inflight := finding.Finding{
		ID:       finding.StableID("toctou/in-flight-action", "DELETE /items/{{item_id}}", "alice"),
		Check:    "toctou/in-flight-action",
		Title:    "Action committed after revocation",
		Severity: finding.High,
		CWE:      "CWE-367",
		Endpoint: "DELETE /items/{{item_id}}",
		Probe:    "delete-item",
		Identity: "alice",
		Location: &finding.Location{File: "api/tocsin.yaml", Line: 101, Column: 3, EndColumn: 14},
		Summary:  "DELETE /items/{{item_id}} committed 148.0 ms after the revocation was acknowledged, on a check made before it.",
		Requests: 9,
		Evidence: []finding.Event{
			{AtMS: -12.5, Kind: "setup", Detail: "resource created"},
			{AtMS: -10.1, Kind: "action-sent", Detail: "action sent"},
			{AtMS: -2.0, Kind: finding.EventChangeSent, Detail: "revocation sent (rfc7009)"},
			{AtMS: 0, Kind: finding.EventChangeAcked, Detail: "revocation acknowledged"},
			{AtMS: 1.1, Kind: "verify", Detail: "resource still there after the acknowledgement (as bob)"},
			{AtMS: 148.0, Kind: "action-answered", Detail: "action answered 204"},
			{AtMS: 150.3, Kind: "lease-expired", Detail: "a kind this build does not know"},
		},
		Inflight: &finding.Inflight{
			ActionLatencyMS: 151.2, AckMS: 10.1, VerifyMS: 11.2, AnsweredMS: 158.1,
			RevokeOffsetsHitMS: []float64{7.5}, RevokeOffsetsTriedMS: []float64{75.6, 37.8, 113.4, 18.9, 7.5}, Attempts: 9,
			RefusedAfterRevocation: true,
		},
		Remediation: "Check the grant at the moment of the action and pin it while it runs.",
	}
	// A forgery: what was sent in place of the token, with the controls that make it a proof.
	whoami := "http://127.0.0.1:8787/jwt/none/whoami"
	forgedReq := func(at float64, detail, token string, status int, outcome, body string) finding.Event {
		kind := finding.EventForged
		if strings.HasPrefix(detail, "with ") {
			kind = finding.EventControl
		}
		return finding.Event{AtMS: at, Kind: kind, Detail: detail, HTTP: &finding.Exchange{
			Method: "GET", URL: whoami, Token: token, Status: status, Outcome: outcome, SentMS: at, ReceivedMS: at + 0.4, BodyExcerpt: body}}
	}
	none := finding.Finding{
		ID:       finding.StableID("jwt/none-algorithm", "GET /jwt/none/whoami", "alice"),
		Check:    "jwt/none-algorithm",
		Title:    "Unsigned JWT (alg none) accepted",
		Severity: finding.Critical,
		CWE:      "CWE-347",
		Endpoint: "GET /jwt/none/whoami",
		Probe:    "whoami-none",
		Identity: "alice",
		Location: &finding.Location{File: "api/tocsin.yaml", Line: 240, Column: 3, EndColumn: 14},
		Summary: "GET /jwt/none/whoami accepted 2 of the 3 tokens forged from a JWT of alice (oauth2 password, alg HS256), where the real token " +
			"is accepted and a request without one refused: alg \"none\", no signature; alg \"none\", no signature, claiming bob.",
		SeverityReason: "a forged token claiming another identity's subject (bob) was accepted: impersonation",
		Forged: []finding.Forged{
			{Variant: `alg "none", no signature`, Made: "the header of alice's token with alg \"none\", its claims, an empty signature segment", Subject: "alice", Status: 200, Outcome: "accepted"},
			{Variant: `alg "NONE", no signature`, Made: "the header of alice's token with alg \"NONE\", its claims, an empty signature segment", Subject: "alice", Status: 401, Outcome: "rejected"},
			{Variant: `alg "none", no signature, claiming bob`, Made: "the header of alice's token with alg \"none\", its claims, an empty signature segment; sub set to \"bob\", the subject of bob", Subject: "bob", OtherSubject: true, Status: 200, Outcome: "accepted"},
		},
		Requests: 6,
		Evidence: []finding.Event{
			forgedReq(0.8, "with the real token of alice", "[token:5e6f7a8b]", 200, "accepted", `{"sub":"alice","via":"none"}`),
			forgedReq(1.5, "with no token", "", 401, "rejected", `{"error":"invalid_token"}`),
			forgedReq(2.1, `alg "none", no signature`, "[forged:0c1d2e3f]", 200, "accepted", `{"sub":"alice","via":"none"}`),
			forgedReq(2.7, `alg "NONE", no signature`, "[forged:4a5b6c7d]", 401, "rejected", `{"error":"invalid_token"}`),
			forgedReq(3.4, `alg "none", no signature, claiming bob`, "[forged:8e9fa0b1]", 200, "accepted", `{"sub":"bob","via":"none"}`),
		},
		Remediation: "Verify every token with the algorithm and key your server chooses.\n- PyJWT: jwt.decode(token, key, algorithms=[\"RS256\"]).",
		References:  []string{"https://cwe.mitre.org/data/definitions/347.html"},
	}
	missing := finding.Finding{
		ID:             finding.StableID("auth/missing", "GET /reports/daily no credentials", "alice"),
		Check:          "auth/missing",
		Title:          "Operation answers without valid authentication",
		Severity:       finding.High,
		CWE:            "CWE-306",
		Endpoint:       "GET /reports/daily",
		Probe:          "read-daily-report",
		Identity:       "alice",
		Summary:        "GET /reports/daily answered 200 (accepted) with no credentials, as it does with a real token of alice: it does not require valid authentication.",
		SeverityReason: "an operation that requires authentication answered without valid credentials",
		Forged:         []finding.Forged{{Variant: "no credentials", Made: "the probe without its Authorization header", Status: 200, Outcome: "accepted"}},
		Requests:       2,
		Evidence: []finding.Event{
			{AtMS: 0.6, Kind: finding.EventControl, Detail: "with the real token of alice", HTTP: &finding.Exchange{Method: "GET", URL: "http://127.0.0.1:8787/reports/daily", Token: "[token:5e6f7a8b]", Status: 200, Outcome: "accepted", SentMS: 0.6, ReceivedMS: 0.9}},
			{AtMS: 1.2, Kind: finding.EventForged, Detail: "no credentials", HTTP: &finding.Exchange{Method: "GET", URL: "http://127.0.0.1:8787/reports/daily", Status: 200, Outcome: "accepted", SentMS: 1.2, ReceivedMS: 1.5, BodyExcerpt: `{"items":0}`}},
		},
		Remediation: "Authenticate every operation that is not meant to be public.",
		References:  []string{"https://cwe.mitre.org/data/definitions/306.html"},
	}
	// An authorization finding: two identities' requests, and the owner's read back as the proof.
	note := "http://127.0.0.1:8787/notes/7c1e"
	exchange := func(method, token string, status int, outcome, body string, at float64) *finding.Exchange {
		return &finding.Exchange{Method: method, URL: note, Token: token, Status: status, Outcome: outcome, SentMS: at, ReceivedMS: at + 0.4, BodyExcerpt: body}
	}
	bola := finding.Finding{
		ID:             finding.StableID("authz/bola", "DELETE /notes/{{note_id}}", "bob"),
		Check:          "authz/bola",
		Title:          "Another identity's object reached by its id",
		Severity:       finding.Critical,
		SeverityReason: "delete of another identity's object, proven by reading it back",
		CWE:            "CWE-639",
		Endpoint:       "DELETE /notes/{{note_id}}",
		Probe:          "delete-note",
		Identity:       "bob",
		Location:       &finding.Location{File: "api/tocsin.yaml", Line: 140, Column: 3, EndColumn: 14},
		Summary:        "bob could delete alice's object through DELETE /notes/{{note_id}}: it answered 204, and alice, reading it back, found it gone.",
		Authz:          &finding.Authz{Owner: "alice", Operation: "delete", Effect: "gone"},
		Requests:       14,
		Evidence: []finding.Event{
			{AtMS: 0.2, Kind: finding.EventToken, Detail: "token for alice (oauth2 password), the owner"},
			{AtMS: 3.1, Kind: finding.EventSetup, Detail: "setup as alice", HTTP: &finding.Exchange{Method: "POST", URL: "http://127.0.0.1:8787/notes", Token: "[token:a11ce000]", Status: 201, Outcome: "accepted", SentMS: 3.1, ReceivedMS: 3.6, BodyExcerpt: `{"id":"7c1e","owner":"alice"}`}},
			{AtMS: 4.0, Kind: finding.EventControl, Detail: "with no token", HTTP: exchange("DELETE", "(none)", 401, "rejected", "", 4.0)},
			{AtMS: 6.3, Kind: finding.EventControl, Detail: "bob does it to its own object", HTTP: exchange("DELETE", "[token:b0b00000]", 204, "accepted", "", 6.3)},
			{AtMS: 8.8, Kind: finding.EventVerify, Detail: "control: alice reads its object", HTTP: exchange("GET", "[token:a11ce000]", 200, "accepted", `{"id":"7c1e","owner":"alice"}`, 8.8)},
			{AtMS: 9.9, Kind: finding.EventAccess, Detail: "bob tries to delete alice's object", HTTP: exchange("DELETE", "[token:b0b00000]", 204, "accepted", "", 9.9)},
			{AtMS: 10.7, Kind: finding.EventVerify, Detail: "alice reads its object back", HTTP: exchange("GET", "[token:a11ce000]", 404, "rejected", `{"error":"not_found"}`, 10.7)},
		},
		Remediation: "Look up every object through the caller.\nIdioms: Flask: Note.query.filter_by(id=note_id, owner_id=current_user.id).first_or_404().",
		References:  []string{"https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/", "https://cwe.mitre.org/data/definitions/639.html"},
	}
	vulnerable := &Report{
		Schema:     Schema,
		Tool:       Tool{Name: "tocsin", Version: "v0.9.0"},
		Target:     Target{Name: "lab (vulnerable)", Origins: []string{"http://127.0.0.1:8787"}},
		StartedAt:  start,
		FinishedAt: start.Add(16580 * time.Millisecond),
		DurationMS: 16580.494,
		Requests:   91,
		Checks: []CheckResult{
			{ID: "toctou/revoked-token-accepted", Title: "Revoked token still accepted", Status: StatusFailed, Endpoints: []string{"GET /items/{{item_id}}", "GET /reports/summary", "GET /reports/daily", "GET /whoami"}, Findings: 3, Requests: 134, DurationMS: 36209.184},
			{ID: "toctou/scope-downgrade-ignored", Title: "Removed scope or role still honoured", Status: StatusFailed, Findings: 1, Requests: 35, DurationMS: 9100},
			{ID: "toctou/in-flight-action", Title: "Action committed after revocation", Status: StatusFailed, Findings: 1, Requests: 9, DurationMS: 900},
			{ID: "toctou/refresh-after-revoke", Title: "Refresh token still works after revocation", Status: StatusSkipped, Reason: `identity "alice" has a static token: nothing to refresh`},
			{ID: "toctou/session-survives-logout", Title: "Session survives logout", Status: StatusError, Reason: "revoke: POST http://127.0.0.1:8787/oauth/revoke answered 500", Requests: 3, DurationMS: 12.5},
			{ID: "auth/missing", Title: "Operation answers without valid authentication", Status: StatusFailed, Endpoints: []string{"GET /reports/daily"}, Findings: 1, Requests: 2, DurationMS: 3.1},
			{ID: "jwt/none-algorithm", Title: "Unsigned JWT (alg none) accepted", Status: StatusFailed, Endpoints: []string{"GET /jwt/none/whoami"}, Findings: 1, Requests: 6, DurationMS: 4.2},
			{ID: "authz/bola", Title: "Another identity's object reached by its id", Status: StatusFailed, Endpoints: []string{"DELETE /notes/{{note_id}}", "GET /notes/{{note_id}}"}, Findings: 1, Requests: 30, DurationMS: 48.2,
				Reason: "read-team-note: bob lists alice's object (GET /notes): it is shared with bob, so reaching it is no flaw",
				Experiments: []Experiment{{Probe: "delete-note", Endpoint: "DELETE /notes/{{note_id}}", Verdict: "finding"},
					{Probe: "read-team-note", Endpoint: "GET /notes/{{note_id}}", Verdict: "passed", Reason: "bob lists alice's object (GET /notes): it is shared with bob, so reaching it is no flaw"}}},
			{ID: "race/limit-overrun", Title: "One-shot action succeeds several times when requests race", Status: StatusInconclusive, Endpoints: []string{"POST /coupons/{{coupon_id}}/redeem"},
				Reason: "redeem-coupon: none of the 20 synchronised copies got an answer", Requests: 42, DurationMS: 310.5,
				Experiments: []Experiment{{Probe: "redeem-coupon", Endpoint: "POST /coupons/{{coupon_id}}/redeem", Verdict: "inconclusive", Reason: "none of the 20 synchronised copies got an answer"}}},
		},
		RestoreFailures: []RestoreFailure{{Identity: "alice", Check: "toctou/scope-downgrade-ignored", State: "downgraded (the downgrade hook's change is still in effect)",
			Manual: "curl -sS -X PUT http://127.0.0.1:8787/idp/subjects/alice/scopes -H 'Authorization: Bearer [credential:0a1b2c3d]' --data-raw '{\"scopes\": [\"reports:read\"]}'",
			Error:  "restore failed 6 times in 1m0s; last: status 500"}},
		// Out of order on purpose: Finish sorts.
		Findings: []finding.Finding{revoked, inflight, missing, bola, never, none, periodic, expiry},
	}
	vulnerable.Finish()
	fixed := &Report{
		Schema:     Schema,
		Tool:       Tool{Name: "tocsin", Version: "v0.9.0"},
		Target:     Target{Name: "lab (fixed)", Origins: []string{"http://127.0.0.1:8788"}},
		StartedAt:  start,
		FinishedAt: start.Add(40 * time.Millisecond),
		DurationMS: 40.2,
		Requests:   10,
		Checks: []CheckResult{
			{ID: "toctou/revoked-token-accepted", Title: "Revoked token still accepted", Status: StatusPassed, Endpoints: []string{"GET /items/{{item_id}}"}, Requests: 5, DurationMS: 1.4},
			{ID: "toctou/scope-downgrade-ignored", Title: "Removed scope or role still honoured", Status: StatusPassed, Requests: 5, DurationMS: 0.9},
		},
		Findings: []finding.Finding{},
	}
	fixed.Finish()
	return []*Report{vulnerable, fixed}
}

// goldenFiles names each format's golden file. Text is the one report a scan prints; every other
// format gets both reports, as the demo writes them.
var goldenFiles = map[string]string{
	"text":  "report.txt",
	"json":  "reports.json",
	"sarif": "reports.sarif",
	"junit": "reports.junit.xml",
	"html":  "reports.html",
}

func render(t *testing.T, format string, reports []*Report) []byte {
	t.Helper()
	if format == "text" {
		reports = reports[:1]
	}
	var buf bytes.Buffer
	if err := Write(&buf, format, Options{}, reports...); err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	if len(goldenFiles) != len(Formats) {
		t.Fatalf("Formats lists %d formats, the golden test covers %d: add the new one", len(Formats), len(goldenFiles))
	}
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			name, ok := goldenFiles[format]
			if !ok {
				t.Fatalf("no golden file for format %q", format)
			}
			got := render(t, format, goldenReports())
			path := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/report -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s output differs from %s (review the change, then go test ./internal/report -update):\n%s", format, path, firstDiff(want, got))
			}
		})
	}
}

// Rendering twice must give the same bytes: a golden file cannot hold a map-ordered or timed output.
func TestWritersDeterministic(t *testing.T) {
	for _, format := range Formats {
		a, b := render(t, format, goldenReports()), render(t, format, goldenReports())
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renderings of the same reports differ:\n%s", format, firstDiff(a, b))
		}
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, "pdf", Options{}, goldenReports()...); err == nil {
		t.Fatal("Write accepted format pdf")
	}
}

// firstDiff shows the first differing line with its neighbours.
func firstDiff(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, w, g)
		}
	}
	return "(no line differs; trailing bytes do)"
}
