"""A small Flask bearer-token API with the seed document's time-of-check/time-of-use flaws.

It is tocsin's real-world target: the Go lab (internal/lab) has the same patterns, this app has them
the way a Flask developer writes them, and tocsin scans it from a config file alone, like any
third-party API. Everything runs in one threaded process on 127.0.0.1: an OAuth2 token endpoint
(password grant), RFC 7009 revocation, an admin endpoint that changes a subject's scopes, and the
resource API.

FLASK_MODE=vulnerable (the default) is the seed's pattern: before_request decodes the bearer token
into flask.g, with the "introspection" (is the token revoked?) cached per token and the subject's
scopes cached per subject, and DELETE acts on g after a pause. FLASK_MODE=fixed re-checks at the
moment of the action: reads look at the revocation list and the subject's current scopes on every
request with no cache, and DELETE holds a lock from its re-check through the delete that revocation
and scope changes take before they apply and answer, so a revocation waits for an in-flight DELETE
and no DELETE can use a token after its revocation was acknowledged.

The vulnerable mode also verifies JWTs the ways Flask code gets wrong, one route each (the fixed mode
verifies them correctly): the seed's literal SECRET_KEY 'your-secret' signs every HS256 token; GET
/reports/daily forgot its authentication; GET /jwt/none/whoami lets a token's header say alg none;
GET /jwt/unverified/whoami decodes with verify_signature off; GET /jwt/embedded/whoami verifies with
the key in a token's jwk header; GET /legacy/session (tokens of POST /legacy/login, which live 2 s)
turns verify_exp off; GET /sso/whoami, for an RS256 issuer with discovery and a JWKS under /sso, lets
a token choose HS256 and hands it the public key's DER bytes.

Between accounts, the vulnerable mode has the flaws of tocsin's authz checks, as Flask code has them:
a note is loaded by its id alone (another account reads, changes and deletes it), the /admin routes
check only that someone is logged in, and PATCH /account builds the profile from every property of
the request, role included. The fixed mode filters notes by owner, checks the admin role and takes
display_name only; a shared note is for every account to read in both modes.

Run with Debian's python3-flask and python3-jwt: /usr/bin/python3 app.py --port 0
Configuration (environment, or the flags of the same meaning; see README.md):
  FLASK_CLIENT_SECRET       client secret of the OAuth2 client (required)
  FLASK_ADMIN_KEY           bearer key of the admin endpoint (required)
  FLASK_CLIENT_ID           OAuth2 client id (default tocsin-scanner)
  FLASK_PORT                port on 127.0.0.1; 0 picks a free one (default 0)
  FLASK_MODE                vulnerable | fixed (default vulnerable)
  FLASK_INTROSPECTION_TTL   vulnerable: seconds a token's introspection is cached (default 2)
  FLASK_PERMISSION_TTL      vulnerable: seconds a subject's scopes are cached (default 2)
  FLASK_ACTION_GAP          seconds DELETE pauses between loading and deleting (default 0.15)
  FLASK_TOKEN_LIFETIME      seconds an access token lives (default 900)
  FLASK_LEGACY_LIFETIME     seconds a token of POST /legacy/login lives (default 2)
The first line on stdout is "LISTENING http://127.0.0.1:PORT", once the socket is bound.
"""

import argparse
import base64
import binascii
import contextlib
import functools
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, abort, g, jsonify, make_response, request
from werkzeug.serving import make_server

VULNERABLE, FIXED = "vulnerable", "fixed"
KNOWN_SCOPES = ["items:read", "items:write", "items:delete", "reports:read"]
MAX_ITEM_NAME = 200

app = Flask(__name__)
# Form and JSON bodies here are small; refuse anything larger before reading it.
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

settings = argparse.Namespace()  # filled in by main() before the server starts

# The identity provider's state: the authority on which tokens are revoked and which scopes each
# subject may use now. STATE_LOCK guards it and the items; it is only ever held briefly.
STATE_LOCK = threading.Lock()
PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}
SUBJECT_SCOPES = {
    "alice": ["items:read", "items:write", "items:delete", "reports:read"],
    "bob": ["items:read", "items:write"],
}
REVOKED = {}  # jti -> exp, so that expired entries can be dropped
ITEMS = {}  # id -> {"id", "name", "owner"}
SIGNING_KEY = secrets.token_bytes(32)  # HS256 key: 256 bits, new for each process; main() sets
# the seed's literal b"your-secret" in the vulnerable mode

# Fixed mode only: held by a DELETE from its re-check through the delete, and taken by revocation
# and scope changes before they are applied and acknowledged. One lock for everything is the
# simplest correct choice for a small app (DELETEs serialise); per-token locks scale better.
ACTION_LOCK = threading.Lock()

# Vulnerable mode only: the caches of the seed's second pattern. Entries expire a fixed time after
# they were filled; hits do not refresh them. time.monotonic(), so a clock change cannot move them.
CACHE_LOCK = threading.Lock()
INTROSPECTION_CACHE = {}  # token -> (expires, claims)
PERMISSION_CACHE = {}  # subject -> (expires, scopes)
MAX_CACHE_ENTRIES = 10_000


# ---- errors ---------------------------------------------------------------------------------------


def fail(status, code, description, www_authenticate=None):
    """Stops the request with an RFC 6749/6750-style JSON error."""
    response = make_response(jsonify(error=code, error_description=description), status)
    if www_authenticate:
        response.headers["WWW-Authenticate"] = www_authenticate
    response.headers["Cache-Control"] = "no-store"
    abort(response)


def invalid_token(description):
    fail(401, "invalid_token", description, 'Bearer error="invalid_token"')


def insufficient_scope(scope):
    fail(403, "insufficient_scope", "the token lacks scope " + scope,
         f'Bearer error="insufficient_scope", scope="{scope}"')


# ---- identity provider ----------------------------------------------------------------------------


def authenticate_client():
    """Checks HTTP Basic client authentication (RFC 6749 section 2.3.1), or the form's client_id and
    client_secret. The Basic credentials are form-encoded before base64, so they are decoded here."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, secret = decoded.partition(":")
        client_id, secret = urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
    elif "client_secret" in request.form:
        client_id, secret = request.form.get("client_id", ""), request.form["client_secret"]
    else:
        client_id, secret = "", None
    ok_id = hmac.compare_digest(client_id.encode(), settings.client_id.encode())
    ok_secret = secret is not None and hmac.compare_digest(secret.encode(), settings.client_secret.encode())
    if not (ok_id and ok_secret):
        fail(401, "invalid_client", "client authentication failed", 'Basic realm="tocsin-flask"')


@app.post("/oauth/token")
def issue_token():
    authenticate_client()
    if request.form.get("grant_type") != "password":
        fail(400, "unsupported_grant_type", "use grant_type=password")
    user, password = request.form.get("username", ""), request.form.get("password", "")
    want = PASSWORDS.get(user)
    if want is None or not hmac.compare_digest(password.encode(), want.encode()):
        fail(400, "invalid_grant", "wrong username or password")
    requested = request.form.get("scope", "").split()
    with STATE_LOCK:
        allowed = list(SUBJECT_SCOPES[user])
    # The token gets what was asked for and is allowed now; nothing asked for means everything allowed.
    scopes = [s for s in allowed if not requested or s in requested]
    if not scopes:
        fail(400, "invalid_scope", "none of the requested scopes is allowed")
    token, claims = mint_token(user, scopes)
    response = jsonify(access_token=token, token_type="Bearer", expires_in=settings.token_lifetime,
                       scope=claims["scope"])
    response.headers["Cache-Control"] = "no-store"
    return response


def mint_token(user, scopes):
    """A signed access token for user with scopes, and its claims."""
    now = int(time.time())
    claims = {
        "jti": secrets.token_urlsafe(16),
        "sub": user,
        "scope": " ".join(scopes),
        "client_id": settings.client_id,
        "iat": now,
        "exp": now + settings.token_lifetime,
    }
    return jwt.encode(claims, SIGNING_KEY, algorithm="HS256"), claims


def decode_jwt(token, verify_exp=True):
    """Verifies what a token says of itself (signature, expiry, required claims), never whether it
    was revoked. Raises jwt.InvalidTokenError."""
    return jwt.decode(token, SIGNING_KEY, algorithms=["HS256"],
                      options={"require": ["jti", "sub", "scope", "exp", "iat"], "verify_exp": verify_exp})


@app.post("/oauth/revoke")
def revoke_token():
    """RFC 7009: an unknown or malformed token is answered 200 too (section 2.2)."""
    authenticate_client()
    token = request.form.get("token", "")
    if not token:
        fail(400, "invalid_request", "token is required")
    try:
        claims = decode_jwt(token, verify_exp=False)  # an expired token may still be revoked
    except jwt.InvalidTokenError:
        return "", 200
    if claims.get("client_id") != settings.client_id:
        fail(400, "unauthorized_client", "the token was issued to another client")
    # Fixed: wait for any DELETE between its re-check and its delete, so that the 200 below means no
    # action authorized by this token is still running and none can start.
    with ACTION_LOCK if settings.mode == FIXED else contextlib.nullcontext():
        with STATE_LOCK:
            now = time.time()
            for jti in [j for j, exp in REVOKED.items() if exp < now]:
                del REVOKED[jti]  # an expired token is refused anyway
            REVOKED[claims["jti"]] = claims["exp"]
    return "", 200


@app.put("/admin/subjects/<sub>/scopes")
def set_subject_scopes(sub):
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not hmac.compare_digest(key.encode(), settings.admin_key.encode()):
        invalid_token("admin key required")
    body = request.get_json(silent=True)
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if not isinstance(scopes, list) or any(s not in KNOWN_SCOPES for s in scopes) or len(set(scopes)) != len(scopes):
        fail(400, "invalid_scope", 'body must be {"scopes": [...]} with known scopes: ' + " ".join(KNOWN_SCOPES))
    if sub not in SUBJECT_SCOPES:
        fail(404, "not_found", f"no subject {sub!r}")
    # Fixed: as for revocation, wait for in-flight actions before the change applies and is answered.
    with ACTION_LOCK if settings.mode == FIXED else contextlib.nullcontext():
        with STATE_LOCK:
            SUBJECT_SCOPES[sub] = [s for s in KNOWN_SCOPES if s in scopes]
    return "", 204


def is_revoked(jti):
    with STATE_LOCK:
        return jti in REVOKED


def current_scopes(subject):
    with STATE_LOCK:
        return list(SUBJECT_SCOPES.get(subject, []))


# ---- authorization: where the two modes differ ----------------------------------------------------


def bearer_token():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        invalid_token("missing bearer token")
    return token


def cached(cache, key, ttl, load):
    """Returns cache[key] if it was filled less than ttl seconds ago, else load() (cached when not
    None). The seed's "cached for performance": nothing evicts an entry when the truth changes."""
    now = time.monotonic()
    with CACHE_LOCK:
        entry = cache.get(key)
    if entry is not None and now < entry[0]:
        return entry[1]
    value = load()
    if value is not None and ttl > 0:
        with CACHE_LOCK:
            if len(cache) >= MAX_CACHE_ENTRIES:
                for k in [k for k, (expires, _) in cache.items() if expires <= now]:
                    del cache[k]
            cache[key] = (now + ttl, value)
    return value


def introspect(token):
    """The app's token introspection: the claims of a well-signed, unexpired, unrevoked token, or
    None. Only active answers are cached (cached() keeps no None)."""
    try:
        claims = decode_jwt(token)
    except jwt.InvalidTokenError:
        return None
    if is_revoked(claims["jti"]):
        return None
    return claims


@app.before_request
def load_current_user():
    """The seed's pattern: decide who the caller is and what they may do once, at request start, and
    keep it in g for the route."""
    if request.endpoint not in REQUIRED_SCOPE:
        return  # identity provider, admin and health endpoints authenticate themselves
    token = bearer_token()
    if settings.mode == FIXED:
        # Only what the token says of itself, which cannot change; revocation and scopes, which can,
        # are checked at the moment of use (require, checked_at_action).
        try:
            claims = decode_jwt(token)
        except jwt.InvalidTokenError:
            invalid_token("token signature or expiry is invalid")
        g.token, g.user = token, {"sub": claims["sub"], "jti": claims["jti"], "scopes": claims["scope"].split()}
        return
    claims = cached(INTROSPECTION_CACHE, token, settings.introspection_ttl, lambda: introspect(token))
    # The cache may outlive a revocation (the flaw under test), not the token's own expiry.
    if claims is None or claims["exp"] <= time.time():
        invalid_token("token is not active")
    allowed = cached(PERMISSION_CACHE, claims["sub"], settings.permission_ttl, lambda: current_scopes(claims["sub"]))
    g.token = token
    g.user = {"sub": claims["sub"], "jti": claims["jti"], "scopes": [s for s in claims["scope"].split() if s in allowed]}


def authorize_now(scope):
    """Fixed mode: the token is not revoked and its subject may use scope, as of this moment."""
    try:
        claims = decode_jwt(g.token)  # it may have expired since the request started
    except jwt.InvalidTokenError:
        invalid_token("token signature or expiry is invalid")
    if is_revoked(claims["jti"]):
        invalid_token("token is not active")
    if scope not in claims["scope"].split() or scope not in current_scopes(claims["sub"]):
        insufficient_scope(scope)


REQUIRED_SCOPE = {}  # endpoint -> scope; the routes before_request authenticates


def require(scope):
    """Route decorator. Vulnerable: trusts the scopes put in g at request start. Fixed: looks again."""
    def decorate(view):
        REQUIRED_SCOPE[view.__name__] = scope  # the endpoint name Flask gives the route

        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if settings.mode == FIXED:
                # Enough for reads, which act at once. DELETE checks again under ACTION_LOCK
                # (checked_at_action): this check alone could go stale during its gap.
                authorize_now(scope)
            elif scope not in g.user["scopes"]:
                insufficient_scope(scope)
            return view(*args, **kwargs)

        return wrapped
    return decorate


@contextlib.contextmanager
def checked_at_action(scope):
    """Fixed mode: holds ACTION_LOCK from a fresh check through the action, so a revocation or scope
    change cannot be acknowledged between the two. Vulnerable mode: nothing, like the seed."""
    if settings.mode != FIXED:
        yield
        return
    with ACTION_LOCK:
        authorize_now(scope)
        yield


# ---- the resource API -----------------------------------------------------------------------------


@app.post("/items")
@require("items:write")
def create_item():
    body = request.get_json(silent=True)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not 0 < len(name) <= MAX_ITEM_NAME:
        fail(400, "invalid_request", 'body must be {"name": "..."} with 1 to 200 characters')
    item = {"id": secrets.token_hex(8), "name": name, "owner": g.user["sub"]}
    with STATE_LOCK:
        ITEMS[item["id"]] = item
    response = make_response(jsonify(item), 201)
    response.headers["Location"] = "/items/" + item["id"]
    return response


@app.get("/items/<item_id>")
@require("items:read")
def get_item(item_id):
    with STATE_LOCK:
        item = ITEMS.get(item_id)
    if item is None:
        fail(404, "not_found", "no such item")
    return jsonify(item)


def items_by_owner():
    with STATE_LOCK:
        by_owner = {}
        for item in ITEMS.values():
            by_owner[item["owner"]] = by_owner.get(item["owner"], 0) + 1
        count = len(ITEMS)
    return jsonify(items=count, by_owner=by_owner)


@app.get("/reports/summary")
@require("reports:read")
def report_summary():
    return items_by_owner()


@app.delete("/items/<item_id>")
@require("items:delete")
def delete_item(item_id):
    """The seed's DELETE: authorized (from g, in the vulnerable mode), it loads the item, pauses for
    the slow work real handlers do between check and use, then deletes."""
    with checked_at_action("items:delete"):
        with STATE_LOCK:
            found = item_id in ITEMS
        if not found:
            fail(404, "not_found", "no such item")
        time.sleep(settings.action_gap)
        with STATE_LOCK:
            found = ITEMS.pop(item_id, None) is not None
        if not found:  # deleted by another request during the pause
            fail(404, "not_found", "no such item")
    return "", 204


def report_daily():
    """The daily report: added later, and in the vulnerable mode without @require (main() decides),
    so before_request does not know it and nothing checks a token."""
    return items_by_owner()


# ---- JWT verification, the ways Flask code gets it wrong -------------------------------------------
# Each route answers who a token says the caller is. The vulnerable mode makes one mistake per route;
# the fixed mode verifies with a key and algorithm the app chooses (decode_jwt and the like).


def whoami(claims, via):
    return jsonify(sub=claims.get("sub"), via=via)


def verified(decode):
    """Runs decode on the bearer token; any PyJWT error (or a malformed jwk) is a 401. A token whose
    jti was revoked is refused in both modes: each route's one flaw is in how it verifies a token,
    not in revocation (a forged token that keeps the real one's jti goes with it)."""
    token = bearer_token()
    try:
        claims = decode(token)
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        invalid_token("invalid token")
    with STATE_LOCK:
        revoked = isinstance(claims, dict) and claims.get("jti") in REVOKED
    if revoked:
        invalid_token("token revoked")
    return claims


@app.get("/jwt/none/whoami")
def jwt_none_whoami():
    def decode(token):
        if settings.mode == VULNERABLE:
            # "Internal jobs send unsigned tokens": the token's own header decides whether it is
            # checked. (PyJWT 2 never verifies alg none itself, even with "none" in algorithms: its
            # NoneAlgorithm.verify is False. This is what the flaw looks like in code on top of it.)
            if str(jwt.get_unverified_header(token).get("alg", "")).lower() == "none":
                return claims_unverified(token)
        return decode_jwt(token)
    return whoami(verified(decode), "none")


def claims_unverified(token):
    """The claims, their exp checked, the signature never."""
    return jwt.decode(token, options={"verify_signature": False, "verify_exp": True, "require": ["sub", "exp"]})


@app.get("/jwt/unverified/whoami")
def jwt_unverified_whoami():
    def decode(token):
        if settings.mode == VULNERABLE:
            # "The gateway verified it already": the claims are read, the signature never checked.
            return claims_unverified(token)
        return decode_jwt(token)
    return whoami(verified(decode), "unverified")


@app.get("/jwt/embedded/whoami")
def jwt_embedded_whoami():
    def decode(token):
        header = jwt.get_unverified_header(token)
        if settings.mode == VULNERABLE and "jwk" in header:
            # "Clients send their public key along": whoever signed the token picked the key.
            key = jwt.PyJWK(header["jwk"]).key
            return jwt.decode(token, key, algorithms=["ES256", "RS256"], options={"require": ["sub", "exp"]})
        return decode_jwt(token)
    return whoami(verified(decode), "embedded")


def issuer(path):
    """The issuer URL of the /legacy and /sso logins: this app's origin, as the request reached it."""
    return request.host_url.rstrip("/") + path


def json_login():
    """Checks a {"username", "password"} body and returns the username."""
    body = request.get_json(silent=True)
    user = body.get("username") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    with STATE_LOCK:  # /register and DELETE /account change PASSWORDS
        want = PASSWORDS.get(user) if isinstance(user, str) else None
    if want is None or not isinstance(password, str) or not hmac.compare_digest(password.encode(), want.encode()):
        fail(401, "invalid_credentials", "wrong username or password")
    return user


@app.post("/legacy/login")
def legacy_login():
    """An older login of the same app: JSON in, a short-lived HS256 token out."""
    user = json_login()
    now = int(time.time())
    claims = {"sub": user, "iss": issuer("/legacy"), "iat": now, "exp": now + settings.legacy_lifetime,
              "jti": secrets.token_urlsafe(16)}
    return jsonify(token=jwt.encode(claims, SIGNING_KEY, algorithm="HS256"), expires_in=settings.legacy_lifetime)


def decode_legacy(token, verify_exp=True):
    return jwt.decode(token, SIGNING_KEY, algorithms=["HS256"], issuer=issuer("/legacy"),
                      options={"require": ["sub", "exp"], "verify_exp": verify_exp})


@app.get("/legacy/whoami")
def legacy_whoami():
    return whoami(verified(decode_legacy), "legacy")


@app.get("/legacy/session")
def legacy_session():
    # Vulnerable: "a session lasts as long as the browser is open", so exp is not checked.
    return whoami(verified(lambda t: decode_legacy(t, verify_exp=settings.mode == FIXED)), "legacy-session")


# The /sso issuer: RS256 tokens, its public key in a JWKS found through OpenID discovery.
SSO_KID = "flask-sso-1"
SSO_PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SSO_PUBLIC_KEY = SSO_PRIVATE_KEY.public_key()
SSO_PUBLIC_DER = SSO_PUBLIC_KEY.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@app.get("/sso/.well-known/openid-configuration")
def sso_discovery():
    iss = issuer("/sso")
    return jsonify(issuer=iss, jwks_uri=iss + "/jwks.json", token_endpoint=iss + "/login",
                   id_token_signing_alg_values_supported=["RS256"])


@app.get("/sso/jwks.json")
def sso_jwks():
    key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SSO_PUBLIC_KEY))
    key.update(kid=SSO_KID, use="sig", alg="RS256")
    return jsonify(keys=[key])


@app.post("/sso/login")
def sso_login():
    user = json_login()
    now = int(time.time())
    claims = {"sub": user, "iss": issuer("/sso"), "iat": now, "exp": now + settings.token_lifetime}
    token = jwt.encode(claims, SSO_PRIVATE_KEY, algorithm="RS256", headers={"kid": SSO_KID})
    return jsonify(token=token, expires_in=settings.token_lifetime)


@app.get("/sso/whoami")
def sso_whoami():
    def decode(token):
        if settings.mode == VULNERABLE:
            # One decode for the partners' RS256 tokens and the old app's HS256 ones. PyJWT refuses a
            # PEM key as an HMAC secret, so the HS256 path was handed the same key's DER bytes: the
            # token's header now chooses how the public key is used.
            alg = str(jwt.get_unverified_header(token).get("alg", ""))
            key = SSO_PUBLIC_DER if alg.startswith("HS") else SSO_PUBLIC_KEY
            return jwt.decode(token, key, algorithms=["RS256", "HS256"], issuer=issuer("/sso"),
                              options={"require": ["sub", "exp"]})
        return jwt.decode(token, SSO_PUBLIC_KEY, algorithms=["RS256"], issuer=issuer("/sso"),
                          options={"require": ["sub", "exp"]})
    return whoami(verified(decode), "sso")


# ---- authorization between accounts ---------------------------------------------------------------
#
# What tocsin's authz/* checks look for, written the way Flask code gets it. Notes belong to the
# account that wrote them; a shared note is for everyone to read (in both modes: a scanner must never
# flag it). The vulnerable mode loads a note by its id alone (Note.query.get), guards the admin routes
# with a decorator that checks only that someone is logged in, and builds the updated profile from
# **request.json, role included. The fixed mode filters by owner, checks the admin role, and takes
# display_name only. alice is an admin; bob and every registered account are users.


class Query:
    """The part of Flask-SQLAlchemy's Model.query this app uses, over an in-memory table."""

    def __init__(self, table):
        self.table = table

    def get(self, ident):
        with STATE_LOCK:
            return self.table.get(ident)

    def filter_by(self, **criteria):
        with STATE_LOCK:
            rows = [r for r in self.table.values() if all(getattr(r, k, None) == v for k, v in criteria.items())]
        return Results(rows)


class Results(list):
    def first(self):
        return self[0] if self else None


class Model:
    """A row: its fields are attributes; Model(**fields) makes one, to_dict() lists them."""

    fields = ()

    def __init__(self, **values):
        unknown = set(values) - set(self.fields)
        if unknown:
            fail(400, "invalid_request", "unknown properties: " + ", ".join(sorted(unknown)))
        for name in self.fields:
            setattr(self, name, values.get(name))

    def to_dict(self):
        return {name: getattr(self, name) for name in self.fields}


class Note(Model):
    fields = ("id", "owner", "title", "body", "shared")
    query = Query({})


class User(Model):
    fields = ("username", "display_name", "role")
    query = Query({})


def save(model, key, row):
    with STATE_LOCK:
        model.query.table[key] = row


def delete(model, key):
    with STATE_LOCK:
        return model.query.table.pop(key, None) is not None


MAX_NOTES = 100_000
MAX_ACCOUNTS = 10_000
BUILT_IN = ("alice", "bob")
for _name, _role in (("alice", "admin"), ("bob", "user")):
    save(User, _name, User(username=_name, display_name=_name, role=_role))
for _owner, _title, _shared in (("alice", "alice's diary", False), ("bob", "bob's shopping list", False),
                                ("alice", "team handbook", True)):
    _id = secrets.token_hex(8)
    save(Note, _id, Note(id=_id, owner=_owner, title=_title, body="", shared=_shared))


def current_user():
    return User.query.get(g.user["sub"])


def note_for(note_id, reading=False):
    """The note the request may act on, or 404. Vulnerable: any account's, by its id alone."""
    if settings.mode == FIXED:
        note = Note.query.filter_by(id=note_id, owner=g.user["sub"]).first()
        if note is None and reading:
            note = Note.query.filter_by(id=note_id, shared=True).first()
    else:
        note = Note.query.get(note_id)
    if note is None:
        fail(404, "not_found", "no such note")
    return note


def login_required(view):
    """Lets in anyone logged in: before_request has put a valid caller in g."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not g.get("user"):
            invalid_token("login required")
        return view(*args, **kwargs)
    return wrapped


def admin_required(view):
    """Lets in admins only."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None or user.role != "admin":
            fail(403, "forbidden", "admins only")
        return view(*args, **kwargs)
    return wrapped


def admin_only(view):
    """Fixed: admin_required. Vulnerable: login_required alone, as if logging in made an admin."""
    checked, logged_in = admin_required(view), login_required(view)

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        return (checked if settings.mode == FIXED else logged_in)(*args, **kwargs)
    return wrapped


def json_body():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        fail(400, "invalid_request", "body must be a JSON object")
    return body


@app.post("/notes")
@require("items:write")
def create_note():
    body = json_body()
    title = body.get("title")
    if not isinstance(title, str) or not 0 < len(title) <= MAX_ITEM_NAME:
        fail(400, "invalid_request", 'body must be {"title": "...", "body": "...", "shared": false}')
    with STATE_LOCK:
        full = len(Note.query.table) >= MAX_NOTES
    if full:
        fail(503, "too_many_notes", "too many notes; restart the app")
    note = Note(id=secrets.token_hex(8), owner=g.user["sub"], title=title, body=str(body.get("body", "")),
                shared=body.get("shared") is True)
    save(Note, note.id, note)
    response = make_response(jsonify(note.to_dict()), 201)
    response.headers["Location"] = "/notes/" + note.id
    return response


@app.get("/notes")
@require("items:read")
def list_notes():
    mine = Note.query.filter_by(owner=g.user["sub"])
    shared = [n for n in Note.query.filter_by(shared=True) if n.owner != g.user["sub"]]
    return jsonify(notes=sorted((n.to_dict() for n in mine + shared), key=lambda n: n["id"]))


@app.get("/notes/<note_id>")
@require("items:read")
def get_note(note_id):
    return jsonify(note_for(note_id, reading=True).to_dict())


@app.put("/notes/<note_id>")
@require("items:write")
def update_note(note_id):
    body = json_body()
    note = note_for(note_id)
    for key in ("title", "body"):
        if isinstance(body.get(key), str):
            setattr(note, key, body[key])
    return jsonify(note.to_dict())


@app.delete("/notes/<note_id>")
@require("items:write")
def delete_note(note_id):
    if not delete(Note, note_for(note_id).id):
        fail(404, "not_found", "no such note")
    return "", 204


@app.get("/admin/accounts")
@require("items:read")
@admin_only
def list_accounts():
    with STATE_LOCK:
        names = sorted(PASSWORDS)
    return jsonify(accounts=[{"username": n, "role": User.query.get(n).role} for n in names])


@app.delete("/admin/notes/<note_id>")
@require("items:write")
@admin_only
def moderate_note(note_id):
    if not delete(Note, note_id):
        fail(404, "not_found", "no such note")
    return "", 204


@app.get("/account")
@require("items:read")
def get_account():
    return jsonify(current_user().to_dict())


@app.patch("/account")
@require("items:write")
def update_account():
    body = json_body()
    user = current_user()
    if settings.mode == FIXED:
        if set(body) != {"display_name"} or not isinstance(body["display_name"], str):
            fail(400, "invalid_request", 'body must be {"display_name": "..."}; no other property may be changed')
        user = User(**{**user.to_dict(), "display_name": body["display_name"]})
    else:
        user = User(**{**user.to_dict(), **body})  # every property of the request, role included
    if not isinstance(user.display_name, str) or not 0 < len(user.display_name) <= MAX_ITEM_NAME:
        fail(400, "invalid_request", "display_name must have 1 to 200 characters")
    save(User, g.user["sub"], user)
    return jsonify(user.to_dict())


@app.post("/register")
def register():
    body = json_body()
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not 3 <= len(name) <= 64 or len(password) < 8 \
            or not all(c.isalnum() or c in "._-" for c in name):
        fail(400, "invalid_request", "username: 3 to 64 of A-Z a-z 0-9 . _ -; password: at least 8 characters")
    with STATE_LOCK:
        taken, full = name in PASSWORDS, len(PASSWORDS) >= MAX_ACCOUNTS
        if not taken and not full:
            PASSWORDS[name] = password
            SUBJECT_SCOPES[name] = ["items:read", "items:write"]
            User.query.table[name] = User(username=name, display_name=name, role="user")
    if taken:
        fail(409, "username_taken", "that username is taken")
    if full:
        fail(503, "too_many_accounts", "too many accounts; restart the app")
    return jsonify(username=name), 201


@app.post("/login")
def login():
    name = json_login()
    with STATE_LOCK:
        scopes = list(SUBJECT_SCOPES.get(name, []))
    token, claims = mint_token(name, scopes)
    response = jsonify(token=token, token_id=claims["jti"], expires_in=settings.token_lifetime)
    response.headers["Cache-Control"] = "no-store"
    return response


@app.delete("/account")
@require("items:read")
def delete_account():
    name = g.user["sub"]
    if name in BUILT_IN:
        fail(403, "forbidden", "the built-in accounts cannot be deleted")
    with STATE_LOCK:
        PASSWORDS.pop(name, None)
        SUBJECT_SCOPES.pop(name, None)
        User.query.table.pop(name, None)
        for note_id in [i for i, n in Note.query.table.items() if n.owner == name]:
            del Note.query.table[note_id]
    return "", 204


@app.get("/healthz")
def healthz():
    """Also counts what a scan could have created: notes by owner and registered accounts."""
    with STATE_LOCK:
        notes = {}
        for n in Note.query.table.values():
            notes[n.owner] = notes.get(n.owner, 0) + 1
        registered = len(PASSWORDS) - len(BUILT_IN)
    return jsonify(status="ok", mode=settings.mode, notes=notes, accounts=registered)


@app.after_request
def no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# ---- start-up -------------------------------------------------------------------------------------


def parse_settings(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(description="tocsin's Flask target: a bearer-token API with the seed's TOCTOU flaws")
    p.add_argument("--port", type=int, default=int(env("FLASK_PORT", "0")), help="port on 127.0.0.1; 0 picks one")
    p.add_argument("--mode", choices=[VULNERABLE, FIXED], default=env("FLASK_MODE", VULNERABLE))
    p.add_argument("--client-id", default=env("FLASK_CLIENT_ID", "tocsin-scanner"))
    p.add_argument("--client-secret", default=env("FLASK_CLIENT_SECRET", ""))
    p.add_argument("--admin-key", default=env("FLASK_ADMIN_KEY", ""))
    p.add_argument("--introspection-ttl", type=float, default=float(env("FLASK_INTROSPECTION_TTL", "2")))
    p.add_argument("--permission-ttl", type=float, default=float(env("FLASK_PERMISSION_TTL", "2")))
    p.add_argument("--action-gap", type=float, default=float(env("FLASK_ACTION_GAP", "0.15")))
    p.add_argument("--token-lifetime", type=int, default=int(env("FLASK_TOKEN_LIFETIME", "900")))
    p.add_argument("--legacy-lifetime", type=int, default=int(env("FLASK_LEGACY_LIFETIME", "2")))
    p.add_argument("--log-requests", action="store_true", default=env("FLASK_LOG_REQUESTS") == "1",
                   help="log each request on stderr (never its headers)")
    s = p.parse_args(argv)
    if not s.client_secret or not s.admin_key:
        p.error("set FLASK_CLIENT_SECRET and FLASK_ADMIN_KEY (or --client-secret and --admin-key)")
    if s.action_gap < 0 or s.token_lifetime < 1 or s.legacy_lifetime < 1:
        p.error("FLASK_ACTION_GAP must be >= 0, FLASK_TOKEN_LIFETIME and FLASK_LEGACY_LIFETIME >= 1")
    return s


def main(argv):
    global SIGNING_KEY
    settings.__dict__.update(vars(parse_settings(argv)))
    if settings.mode == VULNERABLE:
        SIGNING_KEY = b"your-secret"  # the seed's SECRET_KEY, in every tutorial's words
    # The daily report: protected in the fixed mode only (see report_daily).
    view = require("reports:read")(report_daily) if settings.mode == FIXED else report_daily
    app.add_url_rule("/reports/daily", "report_daily", view, methods=["GET"])
    if not settings.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Loopback only: the vulnerable mode is vulnerable on purpose. threaded=True runs each request in
    # its own thread, so a DELETE sleeping in its gap does not hold up the revocation or the reads.
    server = make_server("127.0.0.1", settings.port, app, threaded=True)
    print(f"LISTENING http://127.0.0.1:{server.server_port}", flush=True)
    caches = (f"introspection TTL {settings.introspection_ttl}s, permission TTL {settings.permission_ttl}s"
              if settings.mode == VULNERABLE else "no caches")
    print(f"tocsin flask-api: mode {settings.mode}, {caches}, action gap {settings.action_gap}s",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
