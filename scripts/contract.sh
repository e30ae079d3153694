#!/usr/bin/env bash
# The contract checks (make contract): the spec's lint, the breaking-change
# gate, the TypeScript client's suite against the real server, directly and
# through a validating proxy, and the docs pages in a headless browser.
# It installs what it needs: npm packages from the lockfiles, and Chromium
# from the system's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/dev-env.sh start)"

step() { printf '\n== %s\n' "$*"; }

command -v npm >/dev/null || { echo "contract: Node.js and npm are needed (Debian: apt-get install nodejs npm)"; exit 1; }
step "installing the client's and the checks' npm packages (npm ci)"
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error)
(cd contract && npm ci --no-audit --no-fund --loglevel=error)

if ! command -v chromium >/dev/null && [ -z "${CHROMIUM:-}" ]; then
  step "installing Chromium for the docs check (apt-get install chromium)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null \
    || { echo "contract: Chromium is missing and could not be installed: apt-get install chromium"; exit 1; }
fi

step "lint openapi.yaml (contract/.spectral.yaml)"
contract/node_modules/.bin/spectral lint openapi.yaml --ruleset contract/.spectral.yaml --fail-severity warn

step "breaking changes since the previous version of openapi.yaml"
scripts/breaking.sh

step "TypeScript client against the server (tsc --strict, then node --test)"
(cd clients/typescript && npm test)

step "the same suite through a validating proxy (every request and response checked against openapi.yaml)"
(cd clients/typescript && PRISM="$PWD/../../contract/node_modules/.bin/prism" npm test)

step "the docs pages in headless Chromium"
(cd contract && node --test docs.test.mjs)
