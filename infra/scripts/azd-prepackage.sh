#!/bin/sh
# azd prepackage hook (azure.yaml, POSIX shells): build dist/ with `make build`, then check it and
# write build/jitaccess.zip with the modes the Flex Consumption host needs (infra/pkgzip: the
# jitaccess entry 0755). azd deploys that zip as it is (azure.yaml `dist`).
#   PROFILES=/path/to/profiles.json  (azd env set PROFILES ...) or ./profiles.json
# The sample profiles point at the simulator's made-up group ids; deploying them would make every
# request fail eligibility, so they are refused unless JIT_ALLOW_SAMPLE_PROFILES=1.
# JIT_PACKAGE_DIR and JIT_PACKAGE_ZIP move dist/ and the zip (infra/package_test.go uses them; azd
# reads the zip at azure.yaml's dist, build/jitaccess.zip).
set -eu
cd "$(dirname "$0")/../.."
dir="${JIT_PACKAGE_DIR:-dist}"
zip="${JIT_PACKAGE_ZIP:-build/jitaccess.zip}"

if [ -n "${PROFILES:-}" ] && [ ! -f "$PROFILES" ]; then
  echo "PROFILES=$PROFILES: no such file" >&2
  exit 1
fi
for tool in go make; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: the package is built locally (docs/deploy.md, Prerequisites)" >&2; exit 1; }
done
if [ -n "${PROFILES:-}" ]; then
  make build DIST="$dir" PROFILES="$PROFILES"
else
  make build DIST="$dir"
fi
go run ./infra/pkgzip -dist "$dir" -out "$zip"
