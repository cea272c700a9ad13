#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing: `make test` runs this on
# a fresh machine (CI included), so that no test depends on something installed by hand.
#   python3-flask, python3-jwt  the real Flask target (run by /usr/bin/python3)
#   chromium                    HTML report rendered in a headless browser
#   postgresql                  guard's PostgreSQL store and its Jepsen-style test
#   redis-server                guard's invalidation channel
#   nginx                       a non-Go HTTP server for the race engine
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ]; }
have_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

have_py flask || need+=(python3-flask)
have_py jwt || need+=(python3-jwt)
have_cmd chromium /usr/bin/chromium || need+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
have_cmd redis-server /usr/bin/redis-server || need+=(redis-server)
have_cmd nginx /usr/sbin/nginx || need+=(nginx-light)

if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies: all present"
  exit 0
fi
echo "test dependencies: installing ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing Debian packages ${need[*]} and not root; install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No services are started by the packages' scripts: tests start private instances on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "test dependencies: installed ${need[*]}"
