#!/usr/bin/env bash
# azd prepackage hook (azure.yaml): build dist/ and check it is deployable.
#   PROFILES=/path/to/profiles.json  (azd env set PROFILES ...) or ./profiles.json
# The sample profiles point at the simulator's made-up group ids; deploying them would make every
# request fail eligibility, so they are refused unless JIT_ALLOW_SAMPLE_PROFILES=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -n "${PROFILES:-}" ] && [ ! -f "$PROFILES" ]; then
  echo "PROFILES=$PROFILES: no such file" >&2
  exit 1
fi
make build ${PROFILES:+PROFILES="$PROFILES"}

if [ ! -f dist/profiles.json ]; then
  echo "dist/profiles.json is missing: put your profiles in ./profiles.json or 'azd env set PROFILES /path/to/profiles.json' (docs/deploy.md)" >&2
  exit 1
fi
if grep -q '1c1a0000-0000-4000-8000-' dist/profiles.json && [ "${JIT_ALLOW_SAMPLE_PROFILES:-}" != 1 ]; then
  echo "dist/profiles.json holds the sample (simulated tenant) group ids: wire your aks-default/aks-admin/aks-approvers group ids (docs/deploy.md)" >&2
  exit 1
fi
for f in dist/jitaccess dist/host.json; do
  [ -e "$f" ] || { echo "$f missing after make build" >&2; exit 1; }
done
[ -x dist/jitaccess ] || { echo "dist/jitaccess is not executable" >&2; exit 1; }
echo "dist/ ready: $(find dist -type f | wc -l) files"
