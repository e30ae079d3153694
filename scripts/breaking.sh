#!/usr/bin/env bash
# Fails when openapi.yaml breaks its clients compared with its previous
# version, unless info.version's major number went up.
#
# The previous version is the committed one when the working copy changed
# it, else the one before the last commit; BASE=<rev> names another.
set -euo pipefail
cd "$(dirname "$0")/.."

base=${BASE:-}
if [ -z "$base" ]; then
  if git diff --quiet HEAD -- openapi.yaml 2>/dev/null; then base=HEAD~1; else base=HEAD; fi
fi
old=$(mktemp)
trap 'rm -f "$old"' EXIT
if ! git show "$base:openapi.yaml" >"$old" 2>/dev/null; then
  echo "no openapi.yaml at $base: nothing to compare"
  exit 0
fi

major() { awk '/^info:/{i=1; next} i && /^  version:/{gsub(/["'"'"']/, "", $2); split($2, v, "."); print v[1]; exit}' "$1"; }
was=$(major "$old"); now=$(major openapi.yaml)

if go run github.com/oasdiff/oasdiff@v1.37.0 breaking "$old" openapi.yaml --fail-on ERR; then
  echo "no breaking change against $base"
elif [ "${now:-0}" -gt "${was:-0}" ]; then
  echo "breaking changes against $base are allowed: info.version's major went from $was to $now"
else
  echo "openapi.yaml breaks clients compared with $base: raise info.version's major number ($was) or keep it compatible"
  exit 1
fi
