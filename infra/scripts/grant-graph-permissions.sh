#!/usr/bin/env bash
# Grant jitaccess's managed identity the Microsoft Graph application permissions of DESIGN §7
# (app role assignments on its service principal). Idempotent: roles already granted are left
# as they are. Run by a Privileged Role Administrator (or Global Administrator), signed in with
# `az login`; --dry-run prints what would be done and changes nothing.
#
#   infra/scripts/grant-graph-permissions.sh [--principal-id OID] [--role-assignable-groups] [--dry-run]
#
# The principal id defaults to $MANAGED_IDENTITY_PRINCIPAL_ID, then to the azd environment's
# output of the same name (infra/main.bicep).
#
# --role-assignable-groups also grants RoleManagement.ReadWrite.Directory. Only needed when a
# profile's target group is role-assignable (created with isAssignableToRole=true): Entra then
# refuses membership changes made with GroupMember.ReadWrite.All alone. That permission lets the
# app assign any directory role, so prefer ordinary (not role-assignable) groups for AKS: Azure
# RBAC for Kubernetes does not need them.
set -euo pipefail

GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
GRAPH="https://graph.microsoft.com/v1.0"

# Application permission (app role) ids of Microsoft Graph, the same in every tenant. The script
# also resolves each by name from the tenant's Graph service principal and stops on a mismatch.
PERMISSIONS=(
  "User.Read.All=df021288-bdef-4463-88db-98f22de89214"
  "GroupMember.Read.All=98830695-27a2-44f7-8c18-0c3ebc9698f6"
  "GroupMember.ReadWrite.All=dbaae8cf-10b5-4b86-a4a1-f871c94c6695"
  "User.RevokeSessions.All=77f3a031-c388-4f99-b373-dc68676a979e"
  "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup=41202f2c-f7ab-45be-b001-85c9728b9d69"
  "PrivilegedAssignmentSchedule.Read.AzureADGroup=cd4161cb-f098-48f8-a884-1eda9a42434c"
)
ROLE_ASSIGNABLE="RoleManagement.ReadWrite.Directory=9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

dry_run=false
principal_id="${MANAGED_IDENTITY_PRINCIPAL_ID:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --principal-id) principal_id="${2:?--principal-id needs a value}"; shift ;;
    --role-assignable-groups) PERMISSIONS+=("$ROLE_ASSIGNABLE") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$principal_id" ] && command -v azd >/dev/null 2>&1; then
  principal_id="$(azd env get-value MANAGED_IDENTITY_PRINCIPAL_ID 2>/dev/null || true)"
fi
if [ -z "$principal_id" ]; then
  echo "no principal id: pass --principal-id, set MANAGED_IDENTITY_PRINCIPAL_ID, or run 'azd provision' first" >&2
  exit 2
fi
if ! [[ "$principal_id" =~ ^[0-9a-fA-F-]{36}$ ]]; then
  echo "--principal-id $principal_id is not an object id (GUID)" >&2
  exit 2
fi

online=true
if ! command -v az >/dev/null 2>&1 || ! az account show >/dev/null 2>&1; then
  if ! $dry_run; then
    echo "the Azure CLI is not installed or not signed in: run 'az login' (or use --dry-run)" >&2
    exit 1
  fi
  online=false
  echo "# dry run without a signed-in Azure CLI: nothing is looked up, every grant is listed"
fi

graph_sp=""
existing=""
if $online; then
  graph_sp="$(az rest --method GET --url "$GRAPH/servicePrincipals(appId='$GRAPH_APP_ID')?\$select=id" --query id -o tsv)"
  existing="$(az rest --method GET --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments?\$top=999" \
    --query "value[?resourceId=='$graph_sp'].appRoleId" -o tsv)"
fi

changed=0
for entry in "${PERMISSIONS[@]}"; do
  name="${entry%%=*}"
  role_id="${entry#*=}"
  if $online; then
    resolved="$(az rest --method GET --url "$GRAPH/servicePrincipals/$graph_sp?\$select=appRoles" \
      --query "appRoles[?value=='$name' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
    if [ "$resolved" != "$role_id" ]; then
      echo "Graph app role $name resolves to '$resolved', expected $role_id: stopping" >&2
      exit 1
    fi
    if grep -qix "$role_id" <<<"$existing"; then
      echo "ok       $name (already granted)"
      continue
    fi
  fi
  body="{\"principalId\":\"$principal_id\",\"resourceId\":\"${graph_sp:-<Microsoft Graph service principal id>}\",\"appRoleId\":\"$role_id\"}"
  if $dry_run; then
    echo "would    $name: POST $GRAPH/servicePrincipals/$principal_id/appRoleAssignments $body"
  else
    az rest --method POST --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments" \
      --headers "Content-Type=application/json" --body "$body" --output none
    echo "granted  $name"
  fi
  changed=$((changed + 1))
done

if $dry_run; then
  echo "dry run: $changed grant(s) would be made"
else
  echo "done: $changed grant(s) made; tokens issued before now do not carry them (the app picks them up within the token lifetime, or restart it)"
fi
