#!/usr/bin/env bash
# Create (or update) the tenant-level Microsoft Entra diagnostic setting that streams AuditLogs to
# the Event Hub jitaccess reads (EntraAuditEvents, hub insights-logs-auditlogs). Idempotent: an
# identical setting is left alone; --dry-run prints the request and changes nothing.
#
#   infra/scripts/create-audit-diagnostic-setting.sh [--rule-id ID] [--hub NAME] [--name NAME] [--dry-run]
#
# --rule-id  the Event Hubs namespace authorization rule the stream uses (Manage, Send, Listen);
#            default $AUDIT_EVENTHUB_RULE_ID, then the azd environment's output of that name: the
#            audit namespace's RootManageSharedAccessKey, its only key (infra/modules/eventhubs.bicep).
#            The script reports any other rule on that namespace: delete those.
# --hub      hub name, default $AUDIT_EVENTHUB_NAME or insights-logs-auditlogs.
# --name     diagnostic setting name, default jitaccess-audit.
#
# Needs: a Microsoft Entra ID P1/P2 tenant; the caller signed in with `az login` as a user who is
# Security Administrator in Entra and may list the rule's keys on the Azure side (e.g. Contributor
# on the Event Hubs namespace). This API does not accept service principals.
set -euo pipefail

API="https://management.azure.com/providers/microsoft.aadiam/diagnosticSettings"
API_VERSION="2017-04-01"

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

dry_run=false
name="jitaccess-audit"
rule_id="${AUDIT_EVENTHUB_RULE_ID:-}"
hub="${AUDIT_EVENTHUB_NAME:-insights-logs-auditlogs}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --rule-id) rule_id="${2:?--rule-id needs a value}"; shift ;;
    --hub) hub="${2:?--hub needs a value}"; shift ;;
    --name) name="${2:?--name needs a value}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$rule_id" ] && command -v azd >/dev/null 2>&1; then
  rule_id="$(azd env get-value AUDIT_EVENTHUB_RULE_ID 2>/dev/null || true)"
fi
if [ -z "$rule_id" ]; then
  echo "no authorization rule id: pass --rule-id, set AUDIT_EVENTHUB_RULE_ID, or run 'azd provision' first" >&2
  exit 2
fi
if ! [[ "$rule_id" =~ ^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.EventHub/namespaces/[^/]+/[Aa]uthorization[Rr]ules/[^/]+$ ]]; then
  echo "--rule-id $rule_id is not an Event Hubs namespace authorization rule id" >&2
  exit 2
fi
if ! [[ "$name" =~ ^[A-Za-z0-9_-]{1,100}$ ]]; then
  echo "--name $name: use letters, digits, - and _" >&2
  exit 2
fi

url="$API/$name?api-version=$API_VERSION"
body="{\"properties\":{\"eventHubAuthorizationRuleId\":\"$rule_id\",\"eventHubName\":\"$hub\",\"logs\":[{\"category\":\"AuditLogs\",\"enabled\":true,\"retentionPolicy\":{\"days\":0,\"enabled\":false}}]}}"

online=true
if ! command -v az >/dev/null 2>&1 || ! az account show >/dev/null 2>&1; then
  if ! $dry_run; then
    echo "the Azure CLI is not installed or not signed in: run 'az login' (or use --dry-run)" >&2
    exit 1
  fi
  online=false
  echo "# dry run without a signed-in Azure CLI: the current setting is not looked up"
fi

if $online; then
  # The namespace's only key should be the rule the stream uses (SECURITY.md): report the others.
  ns_id="${rule_id%/[Aa]uthorization[Rr]ules/*}"
  rule_name="${rule_id##*/}"
  if rules="$(az rest --method GET --url "https://management.azure.com$ns_id/authorizationRules?api-version=2024-01-01" \
      --query "value[].name" -o tsv 2>/dev/null)"; then
    for r in $rules; do
      if [ "$r" != "$rule_name" ]; then
        echo "warning: namespace ${ns_id##*/} has another key, rule $r: nothing of jitaccess uses it; delete it with" >&2
        echo "  az rest --method DELETE --url \"https://management.azure.com$ns_id/authorizationRules/$r?api-version=2024-01-01\"" >&2
      fi
    done
  fi
  if current="$(az rest --method GET --url "$url" \
      --query "[properties.eventHubAuthorizationRuleId, properties.eventHubName, properties.logs[?category=='AuditLogs'].enabled | [0]]" \
      -o tsv 2>/dev/null)"; then
    want="$(printf '%s\t%s\t%s' "$rule_id" "$hub" "True")"
    if [ "$(tr '\n' '\t' <<<"$current" | sed 's/\t$//')" = "$want" ] || [ "$current" = "$want" ]; then
      echo "ok: diagnostic setting $name already streams AuditLogs to $hub"
      exit 0
    fi
    echo "diagnostic setting $name exists with other values: it will be replaced"
  fi
fi

if $dry_run; then
  echo "would PUT $url"
  echo "$body"
  exit 0
fi
az rest --method PUT --url "$url" --headers "Content-Type=application/json" --body "$body" --output none
echo "created: diagnostic setting $name streams AuditLogs to $hub (first records arrive within minutes)"
