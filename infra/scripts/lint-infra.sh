#!/bin/sh
# make lint-infra: compile every Bicep file of infra/ and run the Bicep linter on it, when a Bicep
# CLI is present (`bicep` on PATH, or the one `az bicep install` puts in ~/.azure/bin). Without one
# it says so plainly and exits 0 — nothing was checked — unless LINT_INFRA_REQUIRED=1 (then 1).
# The linter's rules are infra/bicepconfig.json; a warning does not fail, an error does.
set -eu
cd "$(dirname "$0")/../.."

bicep=""
if command -v bicep >/dev/null 2>&1; then
  bicep=bicep
elif [ -x "${HOME:-/nonexistent}/.azure/bin/bicep" ]; then
  bicep="$HOME/.azure/bin/bicep"
fi
if [ -z "$bicep" ]; then
  echo "lint-infra: NO BICEP CLI FOUND - infra/*.bicep was NOT compiled and NOT linted."
  echo "lint-infra: install it (az bicep install, or the bicep binary on PATH) and run make lint-infra again."
  echo "lint-infra: what ran instead: go test ./infra/ (text-level checks of the templates)."
  if [ "${LINT_INFRA_REQUIRED:-}" = 1 ]; then
    exit 1
  fi
  exit 0
fi

echo "lint-infra: $("$bicep" --version 2>&1 | head -1)"
status=0
for f in infra/main.bicep infra/modules/*.bicep; do
  if ! "$bicep" build "$f" --stdout >/dev/null; then
    echo "lint-infra: $f does not compile" >&2
    status=1
    continue
  fi
  if ! "$bicep" lint "$f"; then
    echo "lint-infra: $f: linter errors" >&2
    status=1
  fi
done
if [ "$status" = 0 ]; then
  echo "lint-infra: every Bicep file compiles and passes the linter"
fi
exit "$status"
