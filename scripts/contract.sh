#!/usr/bin/env bash
# The contract checks (make contract): the spec's lint, the breaking-change
# gate, the TypeScript client's suite against the real server, directly and
# through a validating proxy, the docs pages in a headless browser, and the
# example admin app in it, against the server and against the mocks.
# It installs what it needs: npm packages from the lockfiles, and Chromium
# from the system's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/dev-env.sh start)"

step() { printf '\n== %s\n' "$*"; }

command -v npm >/dev/null || { echo "contract: Node.js and npm are needed (Debian: apt-get install nodejs npm)"; exit 1; }
step "installing the client's and the checks' npm packages (npm ci)"
# (--ignore-scripts: the suite builds the client itself, so prepare need not.)
(cd clients/typescript && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
(cd contract && npm ci --no-audit --no-fund --loglevel=error)
# (Its prepare builds the client it links, and MSW's install writes its service worker.)
(cd clients/typescript/examples/admin && npm ci --no-audit --no-fund --loglevel=error)

if ! command -v chromium >/dev/null && [ -z "${CHROMIUM:-}" ]; then
  step "installing Chromium for the docs and admin app checks (apt-get install chromium)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null \
    || { echo "contract: Chromium is missing and could not be installed: apt-get install chromium"; exit 1; }
fi

step "lint openapi.yaml (contract/.spectral.yaml)"
contract/node_modules/.bin/spectral lint openapi.yaml --ruleset contract/.spectral.yaml --fail-severity warn

step "breaking changes since the previous version of openapi.yaml"
scripts/breaking.sh

step "TypeScript client against the server (tsc --strict, then node --test): client, React hooks, MSW mocks beside the server, the packed package"
(cd clients/typescript && npm test)

step "the client's calls through a validating proxy (every request and response checked against openapi.yaml)"
# Only the plain client's suites: the mocks' suite compares the server's own
# words, which the proxy would replace with its own.
(cd clients/typescript && PRISM="$PWD/../../contract/node_modules/.bin/prism" node --test --test-concurrency=1 dist/test/client.test.js dist/test/jobs.test.js)

step "the docs pages in headless Chromium"
(cd contract && node --test docs.test.mjs)

step "the code samples of openapi.yaml: TypeScript ones through tsc --strict, curl ones against the server"
(cd contract && node --test samples.test.mjs)

step "the admin app (clients/typescript/examples/admin) in headless Chromium, built and served twice: against the server, then against the mocks; list, load more, create, edit, conflict, delete (screenshots in its screenshots/)"
(cd clients/typescript/examples/admin && npm run --silent e2e)
