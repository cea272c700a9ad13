package guard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// A service with several replicas shares one PostgreSQL. Each replica does this at start-up, and
// a revocation on any of them waits for the actions running on all of them.
func ExampleNewPostgres() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db.internal/app")
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	if err := guard.Migrate(ctx, pool); err != nil {
		panic(err)
	}
	g := guard.NewPostgres(pool)
	verifier := &guard.JWT{Key: []byte("hmac key"), Algorithms: []string{"HS256"}, Issuer: "https://idp.example"}

	mux := http.NewServeMux()
	// Reads: Middleware pins the grant in a transaction of its own while the handler runs.
	mux.Handle("GET /reports", g.Middleware("reports:read", g.Bearer(verifier), http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "report\n") })))
	// Writes to the same database: the check and the write share one transaction, so the write
	// commits before any revocation of the grant can return.
	bearer := g.Bearer(verifier)
	mux.HandleFunc("DELETE /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		grantID, err := bearer(r)
		if err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		err = pgx.BeginFunc(r.Context(), pool, func(tx pgx.Tx) error {
			return guard.DoTx(r.Context(), tx, grantID, "items:delete", func(ctx context.Context) error {
				_, err := tx.Exec(ctx, "DELETE FROM items WHERE id = $1", r.PathValue("id"))
				return err
			})
		})
		switch {
		case errors.Is(err, guard.ErrDenied):
			http.Error(w, err.Error(), http.StatusForbidden)
		case err != nil:
			http.Error(w, "try again later", http.StatusServiceUnavailable)
		}
	})
	// The revocation endpoint answers only once Revoke has returned.
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Revoke(r.Context(), r.FormValue("jti")); err != nil {
			http.Error(w, "revocation not confirmed; retry", http.StatusServiceUnavailable)
		}
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}

func ExampleGuard_Rotate() {
	ctx := context.Background()
	g := guard.New()
	exp := time.Now().Add(5 * time.Minute) // access tokens live minutes; refresh tokens longer

	// Login: the first access grant starts a family.
	refresh, err := g.StartFamily(ctx, guard.Grant{ID: "jti-1", Subject: "alice", Scopes: []string{"items:read"}, Expires: exp}, 24*time.Hour)
	if err != nil {
		panic(err)
	}
	// The client trades its refresh token for the next access grant and a new refresh token.
	next, _, err := g.Rotate(ctx, refresh, "jti-2", exp, 24*time.Hour)
	fmt.Println("rotated:", next.ID, next.Subject, err)

	// Someone presents the old refresh token again: a copy exists, so the family is revoked.
	_, _, err = g.Rotate(ctx, refresh, "jti-3", exp, 24*time.Hour)
	fmt.Println("replayed:", err)
	err = g.Do(ctx, "jti-2", "items:read", func(ctx context.Context) error { return nil })
	fmt.Println("jti-2 now:", err)
	// Output:
	// rotated: jti-2 alice <nil>
	// replayed: guard: refresh token used twice: its family is revoked
	// jti-2 now: guard: grant revoked
}
