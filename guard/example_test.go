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

	"github.com/go-chi/chi/v5"
	"github.com/golang-jwt/jwt/v5"
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

func ExampleGuard_Require() {
	ctx := context.Background()
	g := guard.New()
	if err := g.Grant(ctx, guard.Grant{ID: "jti-1", Subject: "alice", Scopes: []string{"notes:read"}}); err != nil {
		panic(err)
	}

	// grantID finds the grant of a request: g.Bearer(verifier) verifies a bearer JWT and returns its
	// jti. To keep this example short, the token here is the grant ID itself.
	grantID := func(r *http.Request) (string, error) {
		id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", errors.New("no bearer token")
		}
		return id, nil
	}
	readNotes := g.Require("notes:read", grantID)

	mux := http.NewServeMux()
	mux.Handle("GET /notes/{owner}", readNotes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The grant the check allowed, for an ownership check: no second look at the token.
		gr, _ := guard.GrantFrom(r.Context())
		if gr.Subject != r.PathValue("owner") {
			http.Error(w, "not your notes", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "notes of %s\n", gr.Subject)
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer jti-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", resp.Header.Get("WWW-Authenticate"), " ", string(body))
	}
	get("/notes/alice")
	get("/notes/bob")
	if err := g.Revoke(ctx, "jti-1"); err != nil {
		panic(err)
	}
	get("/notes/alice")
	// Output:
	// 200  notes of alice
	// 403  not your notes
	// 401 Bearer error="invalid_token" {"error":"invalid_token","error_description":"guard: grant revoked"}
}

// Require is middleware of the shape chi, gorilla/mux and most routers take: here with chi, one
// scope per route, and JWTs verified by Bearer.
func ExampleGuard_Require_chi() {
	ctx := context.Background()
	g := guard.New()
	key := []byte("an HMAC key of at least 32 bytes!")
	bearer := g.Bearer(&guard.JWT{Key: key, Algorithms: []string{"HS256"}})

	// On login: record the grant, then hand out its token.
	exp := time.Now().Add(15 * time.Minute)
	if err := g.Grant(ctx, guard.Grant{ID: "jti-1", Subject: "alice", Scopes: []string{"notes:read"}, Expires: exp}); err != nil {
		panic(err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"jti": "jti-1", "sub": "alice", "scope": "notes:read", "exp": exp.Unix(),
	}).SignedString(key)
	if err != nil {
		panic(err)
	}

	r := chi.NewRouter()
	// A group of routes under one scope takes it with Use; a single route with With.
	r.Group(func(r chi.Router) {
		r.Use(g.Require("notes:read", bearer))
		r.Get("/notes", func(w http.ResponseWriter, r *http.Request) {
			gr, _ := guard.GrantFrom(r.Context())
			fmt.Fprintf(w, "notes of %s\n", gr.Subject)
		})
	})
	r.With(g.Require("notes:delete", bearer)).Delete("/notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "deleted %s\n", chi.URLParam(r, "id"))
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	send := func(method, path, token string) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Print(method, " ", resp.StatusCode, " ", string(body))
	}
	send(http.MethodGet, "/notes", token)
	send(http.MethodDelete, "/notes/7", token)
	send(http.MethodGet, "/notes", "")
	// Output:
	// GET 200 notes of alice
	// DELETE 403 {"error":"insufficient_scope","error_description":"guard: scope not granted: \"notes:delete\""}
	// GET 401 {"error":"invalid_token","error_description":"missing or invalid bearer token"}
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
	bearer := g.Bearer(&guard.JWT{Key: []byte("hmac key"), Algorithms: []string{"HS256"}, Issuer: "https://idp.example"})

	mux := http.NewServeMux()
	// The handler runs in the transaction that pins the grant: its queries go through guard.Tx, on
	// the one connection the request holds, and its delete commits when it returns, before any
	// revocation of the grant can return.
	mux.Handle("DELETE /items/{id}", g.Require("items:delete", bearer)(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			gr, _ := guard.GrantFrom(r.Context())
			tag, err := guard.Tx(r.Context()).Exec(r.Context(),
				"DELETE FROM items WHERE id = $1 AND owner = $2", r.PathValue("id"), gr.Subject)
			switch {
			case err != nil:
				http.Error(w, "try again later", http.StatusServiceUnavailable) // 5xx: rolled back
			case tag.RowsAffected() == 0:
				http.Error(w, "no such item", http.StatusNotFound)
			}
		})))
	// Inside a transaction of your own, DoTx checks and pins the grant in it; WriteError answers a
	// refusal as Require would.
	mux.HandleFunc("POST /items/{id}/archive", func(w http.ResponseWriter, r *http.Request) {
		err := func() error {
			grantID, err := bearer(r)
			if err != nil {
				return err
			}
			return pgx.BeginFunc(r.Context(), pool, func(tx pgx.Tx) error {
				return guard.DoTx(r.Context(), tx, grantID, "items:write", func(ctx context.Context) error {
					_, err := tx.Exec(ctx, "UPDATE items SET archived = true WHERE id = $1", r.PathValue("id"))
					return err
				})
			})
		}()
		if err != nil {
			guard.WriteError(w, "items:write", err)
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
