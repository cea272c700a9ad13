// Package flasktest scans a real Flask API, testdata/flask-api/app.py, with tocsin from its config
// file alone, the way a user scans a third-party API: the vulnerable mode (the source document's
// patterns) must yield exactly one finding per TOCTOU check with windows that match the app's cache
// TTLs, and exactly the expected findings between accounts (authz/*), and the fixed mode none. The app runs under Debian's /usr/bin/python3 with python3-flask and
// python3-jwt; without them the tests skip, or fail under `make test` (see internal/testenv).
//
// The package holds only tests.
package flasktest
