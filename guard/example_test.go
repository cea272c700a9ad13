package guard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tocsin/tocsin/guard"
)

func ExampleGuard_Do() {
	ctx := context.Background()
	g := guard.New()

	// On issue: record what the token may do.
	err := g.Grant(ctx, guard.Grant{
		ID:      "jti-1",
		Subject: "alice",
		Scopes:  []string{"items:read"},
		Expires: time.Now().Add(15 * time.Minute),
	})
	if err != nil {
		panic(err)
	}

	// Around each action: the check happens now, and the grant stays pinned until the action returns.
	err = g.Do(ctx, "jti-1", "items:read", func(ctx context.Context) error {
		fmt.Println("reading item")
		return nil
	})
	fmt.Println("read:", err)

	err = g.Do(ctx, "jti-1", "items:delete", func(ctx context.Context) error {
		fmt.Println("never printed")
		return nil
	})
	fmt.Println("delete:", err)
	fmt.Println("denied:", errors.Is(err, guard.ErrDenied), errors.Is(err, guard.ErrScope))
	// Output:
	// reading item
	// read: <nil>
	// delete: guard: scope not granted: "items:delete"
	// denied: true true
}

func ExampleGuard_Revoke() {
	ctx := context.Background()
	g := guard.New()
	if err := g.Grant(ctx, guard.Grant{ID: "jti-1", Subject: "alice", Scopes: []string{"items:delete"}}); err != nil {
		panic(err)
	}

	// A slow delete is under way when the revocation arrives.
	running, finish, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Do(ctx, "jti-1", "items:delete", func(ctx context.Context) error {
			close(running)
			<-finish
			fmt.Println("item deleted")
			return nil
		})
	}()
	<-running
	go close(finish) // the delete completes at some point after Revoke is called

	// Revoke returns only once the delete has finished, so a revocation endpoint that answers after
	// it never acknowledges while the delete could still commit.
	if err := g.Revoke(ctx, "jti-1"); err != nil {
		panic(err)
	}
	fmt.Println("revoked")

	err := g.Do(ctx, "jti-1", "items:delete", func(ctx context.Context) error { return nil })
	fmt.Println("later delete:", err)
	<-done
	// Output:
	// item deleted
	// revoked
	// later delete: guard: grant revoked
}

func ExampleGuard_Middleware() {
	ctx := context.Background()
	g := guard.New()
	if err := g.Grant(ctx, guard.Grant{ID: "jti-1", Subject: "alice", Scopes: []string{"reports:read"}}); err != nil {
		panic(err)
	}

	// grantID finds the grant of a request. A real one verifies the bearer JWT and returns its jti.
	grantID := func(r *http.Request) (string, error) {
		id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", errors.New("no bearer token")
		}
		return id, nil
	}
	report := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "report\n")
	})
	srv := httptest.NewServer(g.Middleware("reports:read", grantID, report))
	defer srv.Close()

	get := func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set("Authorization", "Bearer jti-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", resp.Header.Get("WWW-Authenticate"), " ", string(body))
	}
	get()
	if err := g.Revoke(ctx, "jti-1"); err != nil {
		panic(err)
	}
	get()
	// Output:
	// 200  report
	// 401 Bearer error="invalid_token" {"error":"invalid_token","error_description":"guard: grant revoked"}
}
