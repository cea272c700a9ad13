#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing: `make test` runs this on
# a fresh machine (CI included), so that no test depends on something installed by hand.
#   python3-flask, python3-jwt  the real Flask target (run by /usr/bin/python3)
#   chromium                    HTML report rendered in a headless browser
#   postgresql                  guard's PostgreSQL store and its Jepsen-style test
#   redis-server                guard's invalidation channel
#   nginx                       a non-Go HTTP server for the race engine
#   libxml2-utils               xmllint, to check the JUnit report against junit-10.xsd
#   npm                         to install the SARIF Multitool (below), when the machine has no npm
# and, with npm, into a cache folder outside the repository ($TOCSIN_NPM_DIR, default
# ~/.cache/tocsin-npm), the npm package the SARIF report is validated with:
#   @microsoft/sarif-multitool  Microsoft's SARIF validator, with GitHub code scanning's rules
set -euo pipefail

npm_dir="${TOCSIN_NPM_DIR:-$HOME/.cache/tocsin-npm}"
multitool_version=5.7.0

# install_npm_deps installs the SARIF Multitool unless that version is already there.
install_npm_deps() {
  local pkg="$npm_dir/node_modules/@microsoft/sarif-multitool/package.json"
  if [ -f "$pkg" ] && grep -q "\"version\": \"$multitool_version\"" "$pkg" &&
    [ -x "$npm_dir/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool" ]; then
    return 0
  fi
  echo "test dependencies: installing @microsoft/sarif-multitool@$multitool_version into $npm_dir"
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error \
    "@microsoft/sarif-multitool@$multitool_version" >/dev/null
  # The platform package marks its program executable in a postinstall script that npm may not run.
  chmod u+x "$npm_dir/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
}

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ]; }
have_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

have_py flask || need+=(python3-flask)
have_py jwt || need+=(python3-jwt)
have_cmd chromium /usr/bin/chromium || need+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
have_cmd redis-server /usr/bin/redis-server || need+=(redis-server)
have_cmd nginx /usr/sbin/nginx || need+=(nginx-light)
have_cmd xmllint /usr/bin/xmllint || need+=(libxml2-utils)
have_cmd npm /usr/bin/npm || need+=(npm)

if [ ${#need[@]} -eq 0 ]; then
  install_npm_deps
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
install_npm_deps
