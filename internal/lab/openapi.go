package lab

import (
	"net/http"
	"text/template"
)

// The lab describes itself in OpenAPI 3.1, as a real API would: its routes with their scopes,
// examples, and the links that say which response gives which parameter (POST /items gives the id
// of GET and DELETE /items/{id}). Both flavours serve the same document at GET /openapi.json: they
// differ in when they check, not in what they promise. `tocsin init --openapi` and scans with
// openapi: read it.
//
// The routes that verify JWTs (one flaw each in the vulnerable flavour) are described with the
// scheme of the login whose tokens they take: the identity provider's (oauth2), the older login's
// (legacy, an http bearer JWT) and the OpenID provider's (sso, openIdConnect).
//
// The identity provider's own endpoints are described too (token, revocation, the admin call that
// changes a subject's scopes), so that a starter config can be written from the document alone.

var openapiTemplate = template.Must(template.New("openapi").Delims("[[", "]]").Parse(`{
  "openapi": "3.1.0",
  "info": {
    "title": "tocsin lab API",
    "version": "1.0.0",
    "description": "Items, a report, single-use coupons and a welcome bonus, notes owned by accounts and an admin area, behind an OAuth2 identity provider with RFC 7662 introspection and RFC 7009 revocation. The [[.Flavor]] flavour."
  },
  "servers": [{"url": "[[.URL]]"}],
  "security": [{"oauth2": []}],
  "paths": {
    "/items": {
      "post": {
        "operationId": "createItem",
        "summary": "Create an item",
        "security": [{"oauth2": ["items:write"]}],
        "requestBody": {
          "required": true,
          "content": {"application/json": {
            "schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 200}}},
            "example": {"name": "tocsin-lab-item"}
          }}
        },
        "responses": {
          "201": {
            "description": "created",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
            "links": {
              "GetItem": {"operationId": "getItem", "parameters": {"id": "$response.body#/id"}},
              "DeleteItem": {"operationId": "deleteItem", "parameters": {"id": "$response.body#/id"}}
            }
          },
          "400": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/items/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {
        "operationId": "getItem",
        "summary": "Read an item",
        "security": [{"oauth2": ["items:read"]}],
        "responses": {
          "200": {"description": "the item", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      },
      "delete": {
        "operationId": "deleteItem",
        "summary": "Delete an item",
        "security": [{"oauth2": ["items:delete"]}],
        "responses": {
          "204": {"description": "deleted"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/reports/summary": {
      "get": {
        "operationId": "getReportSummary",
        "summary": "Count the items, by owner",
        "security": [{"oauth2": ["reports:read"]}],
        "responses": {
          "200": {"description": "the report", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/reports/daily": {
      "get": {
        "operationId": "getDailyReport",
        "summary": "The same report, as the daily job reads it",
        "security": [{"oauth2": ["reports:read"]}],
        "responses": {
          "200": {"description": "the report", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/coupons": {
      "post": {
        "operationId": "createCoupon",
        "summary": "Create a single-use coupon",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {
          "201": {
            "description": "created",
            "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}, "owner": {"type": "string"}, "value": {"type": "integer"}}}}},
            "links": {
              "RedeemCoupon": {"operationId": "redeemCoupon", "parameters": {"id": "$response.body#/id"}},
              "DeleteCoupon": {"operationId": "deleteCoupon", "parameters": {"id": "$response.body#/id"}}
            }
          },
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/coupons/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "delete": {
        "operationId": "deleteCoupon",
        "summary": "Delete a coupon you created",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {
          "204": {"description": "deleted"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/coupons/{id}/redeem": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "post": {
        "operationId": "redeemCoupon",
        "summary": "Redeem a coupon: once",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {
          "200": {"description": "redeemed", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}, "redeemed": {"type": "boolean"}, "credit": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"},
          "409": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/bonus/claim": {
      "post": {
        "operationId": "claimBonus",
        "summary": "Claim the welcome bonus: once per account",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {
          "200": {"description": "paid", "content": {"application/json": {"schema": {"type": "object", "properties": {"bonus": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "409": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/public/items/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {
        "operationId": "getPublicItem",
        "summary": "Whether an item exists: a public catalogue, no token and no write",
        "security": [],
        "responses": {
          "200": {"description": "it exists", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}}}}}},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/referrals": {
      "post": {
        "operationId": "createReferral",
        "summary": "Create a referral code another account can apply",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {
          "201": {"description": "created", "content": {"application/json": {"schema": {"type": "object", "properties": {"referral_code": {"type": "string"}}}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/referrals/{code}": {
      "parameters": [{"name": "code", "in": "path", "required": true, "schema": {"type": "string"}}],
      "delete": {
        "operationId": "deleteReferral",
        "summary": "Delete a referral code you created",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {"204": {"description": "deleted"}, "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/apply-referral": {
      "post": {
        "operationId": "applyReferral",
        "summary": "Apply another account's referral code: you get a discount coupon (find it in GET /discount-coupons)",
        "security": [{"oauth2": ["items:write"]}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["referral_code"], "properties": {"referral_code": {"type": "string"}}}}}},
        "responses": {
          "200": {"description": "applied", "content": {"application/json": {"schema": {"type": "object", "properties": {"message": {"type": "string"}, "discount": {"type": "integer"}}}}}},
          "400": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/discount-coupons": {
      "get": {
        "operationId": "listDiscountCoupons",
        "summary": "Your discount coupons",
        "security": [{"oauth2": ["items:read"]}],
        "responses": {
          "200": {"description": "your coupons", "content": {"application/json": {"schema": {"type": "object", "properties": {"coupons": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "referral_code": {"type": "string"}, "discount": {"type": "integer"}, "used": {"type": "boolean"}}}}}}}}},
          "401": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/discount-coupons/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "delete": {
        "operationId": "deleteDiscountCoupon",
        "summary": "Delete a discount coupon of yours and the orders placed with it",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {"204": {"description": "deleted"}, "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/orders": {
      "post": {
        "operationId": "placeOrder",
        "summary": "Place an order with a discount coupon: once per coupon",
        "security": [{"oauth2": ["items:write"]}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["coupon_id"], "properties": {"coupon_id": {"type": "string"}}}}}},
        "responses": {
          "201": {"description": "ordered", "content": {"application/json": {"schema": {"type": "object", "properties": {"order_id": {"type": "string"}, "discount": {"type": "integer"}}}}}},
          "400": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/tokens/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "delete": {
        "operationId": "revokeTokenByID",
        "summary": "Revoke one of your tokens by its id (login's token_id)",
        "responses": {"204": {"description": "revoked"}, "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/register": {
      "post": {
        "operationId": "register",
        "summary": "Create an account (it may use items:read and items:write)",
        "security": [],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Credentials"}}}},
        "responses": {"201": {"description": "created"}, "400": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/login": {
      "post": {
        "operationId": "login",
        "summary": "Log in to an account",
        "security": [],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Credentials"}}}},
        "responses": {
          "200": {"description": "a token", "content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"type": "string"}, "token_id": {"type": "string"}, "expires_in": {"type": "integer"}}}}}},
          "400": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/account": {
      "get": {
        "operationId": "getAccount",
        "summary": "The caller's profile",
        "security": [{"oauth2": ["items:read"]}],
        "responses": {
          "200": {"description": "the profile", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      },
      "patch": {
        "operationId": "updateAccount",
        "summary": "Change the caller's display name (username and role are the server's)",
        "security": [{"oauth2": ["items:write"]}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["display_name"], "properties": {"display_name": {"type": "string", "maxLength": 200}}}}}},
        "responses": {
          "200": {"description": "the profile", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}}},
          "400": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      },
      "delete": {
        "operationId": "deleteAccount",
        "summary": "Delete the caller's account",
        "responses": {"204": {"description": "deleted"}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/notes": {
      "post": {
        "operationId": "createNote",
        "summary": "Write a note: yours, or shared with every account for reading",
        "security": [{"oauth2": ["items:write"]}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string", "maxLength": 200}, "body": {"type": "string"}, "shared": {"type": "boolean", "default": false}}}}}},
        "responses": {
          "201": {
            "description": "created",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}},
            "links": {
              "GetNote": {"operationId": "getNote", "parameters": {"id": "$response.body#/id"}},
              "UpdateNote": {"operationId": "updateNote", "parameters": {"id": "$response.body#/id"}},
              "DeleteNote": {"operationId": "deleteNote", "parameters": {"id": "$response.body#/id"}}
            }
          },
          "400": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      },
      "get": {
        "operationId": "listNotes",
        "summary": "Your notes and the shared ones",
        "security": [{"oauth2": ["items:read"]}],
        "responses": {
          "200": {"description": "the notes you may read", "content": {"application/json": {"schema": {"type": "object", "properties": {"notes": {"type": "array", "items": {"$ref": "#/components/schemas/Note"}}}}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/notes/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {
        "operationId": "getNote",
        "summary": "Read a note of yours, or a shared one",
        "security": [{"oauth2": ["items:read"]}],
        "responses": {
          "200": {"description": "the note", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      },
      "put": {
        "operationId": "updateNote",
        "summary": "Change a note of yours",
        "security": [{"oauth2": ["items:write"]}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"title": {"type": "string", "maxLength": 200}, "body": {"type": "string"}}}, "example": {"body": "changed by tocsin"}}}},
        "responses": {
          "200": {"description": "the note", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}},
          "400": {"$ref": "#/components/responses/Error"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      },
      "delete": {
        "operationId": "deleteNote",
        "summary": "Delete a note of yours",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {
          "204": {"description": "deleted"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/admin/accounts": {
      "get": {
        "operationId": "listAccounts",
        "summary": "The accounts and their roles: admins only (the server checks the account's role, which no scope expresses)",
        "security": [{"oauth2": ["items:read"]}],
        "responses": {
          "200": {"description": "the accounts", "content": {"application/json": {"schema": {"type": "object", "properties": {"accounts": {"type": "array", "items": {"type": "object", "properties": {"username": {"type": "string"}, "role": {"type": "string"}}}}}}}}},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/admin/notes/{id}": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "delete": {
        "operationId": "moderateNote",
        "summary": "Delete anyone's note: admins only (the server checks the account's role, which no scope expresses)",
        "security": [{"oauth2": ["items:write"]}],
        "responses": {
          "204": {"description": "deleted"},
          "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/oauth/token": {
      "post": {
        "operationId": "issueToken",
        "summary": "OAuth2 token endpoint (RFC 6749): password, client_credentials and refresh_token grants",
        "security": [{"client": []}],
        "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["grant_type"], "properties": {"grant_type": {"type": "string"}, "username": {"type": "string"}, "password": {"type": "string"}, "scope": {"type": "string"}, "refresh_token": {"type": "string"}}}}}},
        "responses": {"200": {"description": "a token"}, "400": {"description": "an OAuth2 error"}, "401": {"description": "client authentication failed"}}
      }
    },
    "/oauth/revoke": {
      "post": {
        "operationId": "revokeToken",
        "summary": "Token revocation (RFC 7009)",
        "security": [{"client": []}],
        "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}, "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]}}}}}},
        "responses": {"200": {"description": "revoked (or unknown)"}, "401": {"description": "client authentication failed"}}
      }
    },
    "/oauth/introspect": {
      "post": {
        "operationId": "introspectToken",
        "summary": "Token introspection (RFC 7662)",
        "security": [{"client": []}],
        "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}}}},
        "responses": {"200": {"description": "the token's state"}, "401": {"description": "client authentication failed"}}
      }
    },
    "/idp/subjects/{sub}/scopes": {
      "put": {
        "operationId": "setSubjectScopes",
        "summary": "Set the scopes a subject may use (admin): tokens already issued lose what is removed",
        "security": [{"admin": []}],
        "parameters": [{"name": "sub", "in": "path", "required": true, "schema": {"type": "string"}, "example": "alice"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["scopes"], "properties": {"scopes": {"type": "array", "items": {"type": "string"}}}}}}},
        "responses": {"200": {"description": "changed"}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/jwt/none/whoami": {
      "get": {
        "operationId": "whoamiNone",
        "summary": "Who the identity provider's token says the caller is (a job runner's unsigned tokens are let through here in the vulnerable flavour)",
        "responses": {"200": {"description": "the caller", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Whoami"}}}}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/jwt/unverified/whoami": {
      "get": {
        "operationId": "whoamiUnverified",
        "summary": "Who the identity provider's token says the caller is (claims decoded without the signature in the vulnerable flavour)",
        "responses": {"200": {"description": "the caller", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Whoami"}}}}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/jwt/embedded/whoami": {
      "get": {
        "operationId": "whoamiEmbedded",
        "summary": "Who the identity provider's token says the caller is (the key in a token's jwk header is trusted in the vulnerable flavour)",
        "responses": {"200": {"description": "the caller", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Whoami"}}}}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/legacy/login": {
      "post": {
        "operationId": "legacyLogin",
        "summary": "The older login: short-lived HS256 tokens",
        "security": [],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Credentials"}}}},
        "responses": {
          "200": {"description": "a login", "content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/legacy/whoami": {
      "get": {
        "operationId": "legacyWhoami",
        "summary": "Who the older login's token says the caller is",
        "security": [{"legacy": []}],
        "responses": {"200": {"description": "the caller", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Whoami"}}}}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/legacy/session": {
      "get": {
        "operationId": "legacySession",
        "summary": "The session of the older login's token",
        "security": [{"legacy": []}],
        "responses": {"200": {"description": "the caller", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Whoami"}}}}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/sso/.well-known/openid-configuration": {
      "get": {
        "operationId": "ssoDiscovery",
        "summary": "The OpenID provider's discovery document",
        "security": [],
        "responses": {"200": {"description": "the provider's metadata"}}
      }
    },
    "/sso/jwks.json": {
      "get": {
        "operationId": "ssoJWKS",
        "summary": "The OpenID provider's public keys",
        "security": [],
        "responses": {"200": {"description": "a JSON Web Key Set"}}
      }
    },
    "/sso/login": {
      "post": {
        "operationId": "ssoLogin",
        "summary": "Log in at the OpenID provider: RS256 tokens",
        "security": [],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Credentials"}}}},
        "responses": {
          "200": {"description": "a login", "content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/sso/whoami": {
      "get": {
        "operationId": "ssoWhoami",
        "summary": "Who the OpenID provider's token says the caller is",
        "security": [{"sso": []}],
        "responses": {"200": {"description": "the caller", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Whoami"}}}}, "401": {"$ref": "#/components/responses/Error"}}
      }
    },
    "/healthz": {
      "get": {
        "operationId": "health",
        "summary": "Liveness",
        "security": [],
        "responses": {"200": {"description": "up"}}
      }
    }
  },
  "components": {
    "securitySchemes": {
      "oauth2": {
        "type": "oauth2",
        "flows": {"password": {"tokenUrl": "[[.URL]]/oauth/token", "scopes": {
          "items:read": "read items", "items:write": "create items and coupons", "items:delete": "delete items", "reports:read": "read the report"}}}
      },
      "client": {"type": "http", "scheme": "basic", "description": "OAuth2 client authentication (client_id and client_secret)"},
      "admin": {"type": "http", "scheme": "bearer", "description": "the lab's admin key"},
      "legacy": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "tokens of the older login, POST /legacy/login"},
      "sso": {"type": "openIdConnect", "openIdConnectUrl": "[[.URL]]/sso/.well-known/openid-configuration"}
    },
    "schemas": {
      "Item": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "owner": {"type": "string"}}},
      "Note": {"type": "object", "properties": {"id": {"type": "string", "readOnly": true}, "owner": {"type": "string", "readOnly": true}, "title": {"type": "string"}, "body": {"type": "string"}, "shared": {"type": "boolean"}}},
      "Profile": {"type": "object", "properties": {"username": {"type": "string", "readOnly": true}, "display_name": {"type": "string"}, "role": {"type": "string", "enum": ["user", "admin"], "readOnly": true}}},
      "Report": {"type": "object", "properties": {"items": {"type": "integer"}, "by_owner": {"type": "object", "additionalProperties": {"type": "integer"}}}},
      "Credentials": {"type": "object", "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}}},
      "Whoami": {"type": "object", "properties": {"sub": {"type": "string"}, "via": {"type": "string"}}},
      "Error": {"type": "object", "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}
    },
    "responses": {
      "Error": {"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  }
}
`))

// OpenAPI returns the lab's OpenAPI 3.1 document, for its URL.
func (l *Lab) OpenAPI() []byte { return OpenAPIFor(l.url, l.opts.Flavor) }

func (l *Lab) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(l.OpenAPI())
}
