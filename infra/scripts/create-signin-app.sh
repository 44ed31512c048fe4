#!/usr/bin/env bash
# Create (or bring up to date) the Microsoft Entra app registration with which App Service
# Authentication signs operators in to the read API and the dashboard (docs/design.md, The read API, docs/deploy.md
# §6). Bicep cannot create app registrations; this script does, idempotently (what is already
# right is left alone), with the Azure CLI. --dry-run prints what it would change.
#
#   infra/scripts/create-signin-app.sh [--name NAME] [--hostname HOST] [--principal-id OID]
#                                      [--assign OBJECT_ID]... [--allow-azure-cli] [--dry-run]
#
# It makes: a single-tenant app registration (default name jitaccess-signin-<azd environment>)
# with the identifier URI api://<client id>, v2 access tokens and a delegated scope
# user_impersonation; the app role JitAccess.Read (members: users and groups) that every read
# needs; its service principal with "assignment required" (appRoleAssignmentRequired=true), so
# that only users and groups assigned a role can sign in at all. Once the Function App exists
# (after `azd provision`; --hostname defaults to the azd output FUNCTION_APP_HOSTNAME,
# --principal-id to MANAGED_IDENTITY_PRINCIPAL_ID) it adds the sign-in redirect URI
# https://<host>/.auth/login/aad/callback with ID token issuance, and a federated identity
# credential that lets the app's managed identity stand in for a client secret (App Service
# Authentication's OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID; no secret is ever created).
#
# --assign OBJECT_ID  assign JitAccess.Read to that user or group (repeatable).
# --allow-azure-cli   pre-authorize the Azure CLI for user_impersonation, so that an operator can
#                     read with `az account get-access-token --scope api://<client id>/user_impersonation`
#                     (also add the Azure CLI's client id to signInAllowedClientApplications).
#
# Run it before `azd provision` (it prints the client id: `azd env set JIT_SIGNIN_CLIENT_ID <id>`)
# and again after it. Needs: `az login` as a user who may create app registrations (Application
# Developer or above); --assign needs ownership of the app or Cloud Application Administrator.
set -euo pipefail

GRAPH="https://graph.microsoft.com/v1.0"
READ_ROLE="JitAccess.Read"
# Ids of the role and the scope inside this app registration (any GUID unique within the app;
# fixed so that every run means the same ones).
READ_ROLE_ID="1fde4df0-b5e6-4751-bd90-e3be47aa62cd"
SCOPE_ID="f7f83aba-791e-4ebb-b46b-c6422e3ac859"
AZURE_CLI_APP_ID="04b07795-8ddb-461a-bbee-02f9e1bf7b46"
FIC_NAME="jitaccess-managed-identity"

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

dry_run=false
allow_cli=false
name=""
host="${FUNCTION_APP_HOSTNAME:-}"
principal_id="${MANAGED_IDENTITY_PRINCIPAL_ID:-}"
assign=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --allow-azure-cli) allow_cli=true ;;
    --name) name="${2:?--name needs a value}"; shift ;;
    --hostname) host="${2:?--hostname needs a value}"; shift ;;
    --principal-id) principal_id="${2:?--principal-id needs a value}"; shift ;;
    --assign) assign+=("${2:?--assign needs an object id}"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

azd_value() { command -v azd >/dev/null 2>&1 && azd env get-value "$1" 2>/dev/null || true; }
[ -n "$host" ] || host="$(azd_value FUNCTION_APP_HOSTNAME)"
[ -n "$principal_id" ] || principal_id="$(azd_value MANAGED_IDENTITY_PRINCIPAL_ID)"
if [ -z "$name" ]; then
  env_name="${AZURE_ENV_NAME:-$(azd_value AZURE_ENV_NAME)}"
  name="jitaccess-signin${env_name:+-$env_name}"
fi
guid='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
if [ -n "$principal_id" ] && ! [[ "$principal_id" =~ $guid ]]; then
  echo "--principal-id $principal_id is not an object id (GUID)" >&2; exit 2
fi
for oid in "${assign[@]+"${assign[@]}"}"; do
  [[ "$oid" =~ $guid ]] || { echo "--assign $oid is not an object id (GUID)" >&2; exit 2; }
done
if [ -n "$host" ] && ! [[ "$host" =~ ^[A-Za-z0-9.-]+$ ]]; then
  echo "--hostname $host: give the host name only, e.g. func-jit-abc.azurewebsites.net" >&2; exit 2
fi

online=true
if ! command -v az >/dev/null 2>&1 || ! az account show >/dev/null 2>&1; then
  if ! $dry_run; then
    echo "the Azure CLI is not installed or not signed in: run 'az login' (or use --dry-run)" >&2
    exit 1
  fi
  online=false
  echo "# dry run without a signed-in Azure CLI: nothing is looked up, every step is listed"
fi

changed=0
# step DESCRIPTION COMMAND...: run (or, with --dry-run, print) one change.
step() {
  local what="$1"; shift
  changed=$((changed + 1))
  if $dry_run; then
    echo "would    $what: $*"
  else
    "$@" >/dev/null
    echo "done     $what"
  fi
}
ok() { echo "ok       $1"; }
q() { $online && az "$@" 2>/dev/null || true; } # a look-up; empty when offline

tenant="$(q account show --query tenantId -o tsv)"
app_id="$(q ad app list --display-name "$name" --query "[0].appId" -o tsv)"
if [ -z "$app_id" ]; then
  if $dry_run; then
    step "create the app registration $name" az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --enable-id-token-issuance true
    app_id="<client id>"
  else
    app_id="$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --enable-id-token-issuance true --query appId -o tsv)"
    changed=$((changed + 1))
    echo "done     create the app registration $name ($app_id)"
  fi
else
  ok "app registration $name ($app_id)"
fi
obj_id="$(q ad app show --id "$app_id" --query id -o tsv)"
obj_id="${obj_id:-<app object id>}"

# Identifier URI: the audience of access tokens for the API.
if grep -qx "api://$app_id" <<<"$(q ad app show --id "$app_id" --query "identifierUris[]" -o tsv)"; then
  ok "identifier URI api://$app_id"
else
  step "identifier URI api://$app_id" az ad app update --id "$app_id" --identifier-uris "api://$app_id"
fi

# The app role every read needs.
role_json="{\"id\":\"$READ_ROLE_ID\",\"value\":\"$READ_ROLE\",\"displayName\":\"Read jitaccess requests and the dashboard\",\"description\":\"Read access requests, their history and the operators' dashboard of jitaccess.\",\"allowedMemberTypes\":[\"User\"],\"isEnabled\":true}"
role_enabled="$(q ad app show --id "$app_id" --query "appRoles[?value=='$READ_ROLE'].isEnabled | [0]" -o tsv)"
if [ "$role_enabled" = true ]; then
  ok "app role $READ_ROLE"
elif [ -n "$role_enabled" ]; then
  echo "the app role $READ_ROLE of $name is disabled: enable it (App registrations > $name > App roles)" >&2
  exit 1
else
  roles="$(q ad app show --id "$app_id" --query "appRoles" -o json | tr -d '\n')"
  roles="${roles:-[]}"
  if [[ "$roles" =~ ^\[[[:space:]]*\]$ ]]; then roles="[$role_json]"; else roles="${roles%]},$role_json]"; fi
  step "app role $READ_ROLE (allowed member types: User)" az rest --method PATCH --url "$GRAPH/applications/$obj_id" \
    --headers "Content-Type=application/json" --body "{\"appRoles\":$roles}"
fi

# v2 access tokens (issuer <login>/<tenant>/v2.0, as App Service Authentication is configured) and
# the delegated scope user_impersonation; the Azure CLI pre-authorized on request.
scope_id="$(q ad app show --id "$app_id" --query "api.oauth2PermissionScopes[?value=='user_impersonation'].id | [0]" -o tsv)"
token_version="$(q ad app show --id "$app_id" --query "api.requestedAccessTokenVersion" -o tsv)"
preauth="$(q ad app show --id "$app_id" --query "api.preAuthorizedApplications" -o json | tr -d '\n')"
preauth="${preauth:-[]}"
cli_ok=true
if $allow_cli && ! grep -qi "$AZURE_CLI_APP_ID" <<<"$preauth"; then cli_ok=false; fi
if [ -n "$scope_id" ] && [ "$token_version" = 2 ] && $cli_ok; then
  ok "v2 tokens, scope user_impersonation"
else
  scope_id="${scope_id:-$SCOPE_ID}"
  if ! $cli_ok; then
    cli="{\"appId\":\"$AZURE_CLI_APP_ID\",\"delegatedPermissionIds\":[\"$scope_id\"]}"
    if [[ "$preauth" =~ ^\[[[:space:]]*\]$ ]]; then preauth="[$cli]"; else preauth="${preauth%]},$cli]"; fi
  fi
  scope="{\"id\":\"$scope_id\",\"value\":\"user_impersonation\",\"type\":\"User\",\"isEnabled\":true,\"adminConsentDisplayName\":\"Read jitaccess\",\"adminConsentDescription\":\"Read jitaccess requests and the dashboard as the signed-in user.\",\"userConsentDisplayName\":\"Read jitaccess\",\"userConsentDescription\":\"Read jitaccess requests and the dashboard as you.\"}"
  step "v2 tokens, scope user_impersonation$($allow_cli && echo ', Azure CLI pre-authorized')" az rest --method PATCH --url "$GRAPH/applications/$obj_id" \
    --headers "Content-Type=application/json" \
    --body "{\"api\":{\"requestedAccessTokenVersion\":2,\"oauth2PermissionScopes\":[$scope],\"preAuthorizedApplications\":$preauth}}"
fi

# The service principal, with assignment required: nobody without a role signs in.
sp_id="$(q ad sp list --filter "appId eq '$app_id'" --query "[0].id" -o tsv)"
if [ -z "$sp_id" ]; then
  if $dry_run; then
    step "service principal" az ad sp create --id "$app_id"
    sp_id="<service principal id>"
  else
    sp_id="$(az ad sp create --id "$app_id" --query id -o tsv)"
    changed=$((changed + 1))
    echo "done     service principal ($sp_id)"
  fi
else
  ok "service principal ($sp_id)"
fi
if [ "$(q ad sp show --id "$app_id" --query appRoleAssignmentRequired -o tsv)" = true ]; then
  ok "assignment required"
else
  step "assignment required (appRoleAssignmentRequired=true)" az ad sp update --id "$app_id" --set appRoleAssignmentRequired=true
fi

# Sign-in redirect and the managed identity as the app's credential: once the app exists.
if [ -z "$host" ]; then
  echo "later    redirect URI: no Function App host name yet (run again after 'azd provision', or pass --hostname)"
else
  callback="https://$host/.auth/login/aad/callback"
  uris="$(q ad app show --id "$app_id" --query "web.redirectUris[]" -o tsv)"
  id_tokens="$(q ad app show --id "$app_id" --query "web.implicitGrantSettings.enableIdTokenIssuance" -o tsv)"
  if grep -qx "$callback" <<<"$uris" && [ "$id_tokens" = true ]; then
    ok "redirect URI $callback"
  else
    # shellcheck disable=SC2086
    step "redirect URI $callback, ID tokens" az ad app update --id "$app_id" --web-redirect-uris $uris "$callback" --enable-id-token-issuance true
  fi
fi
if [ -z "$principal_id" ]; then
  echo "later    federated credential: no managed identity yet (run again after 'azd provision', or pass --principal-id)"
else
  issuer="https://login.microsoftonline.com/${tenant:-<tenant id>}/v2.0"
  subject="$(q ad app federated-credential list --id "$app_id" --query "[?name=='$FIC_NAME'].subject | [0]" -o tsv)"
  if [ "$subject" = "$principal_id" ]; then
    ok "federated credential $FIC_NAME (managed identity $principal_id)"
  else
    if [ -n "$subject" ]; then
      step "remove the federated credential $FIC_NAME of another identity" az ad app federated-credential delete --id "$app_id" --federated-credential-id "$FIC_NAME"
    fi
    fic="{\"name\":\"$FIC_NAME\",\"issuer\":\"$issuer\",\"subject\":\"$principal_id\",\"audiences\":[\"api://AzureADTokenExchange\"],\"description\":\"jitaccess Function App: App Service Authentication signs in with its managed identity instead of a client secret\"}"
    step "federated credential $FIC_NAME (managed identity $principal_id)" az ad app federated-credential create --id "$app_id" --parameters "$fic"
  fi
fi

# Role assignments asked for.
if [ ${#assign[@]} -gt 0 ]; then
  holders="$(q rest --method GET --url "$GRAPH/servicePrincipals/$sp_id/appRoleAssignedTo?\$top=999" --query "value[?appRoleId=='$READ_ROLE_ID'].principalId" -o tsv)"
  for oid in "${assign[@]}"; do
    if grep -qix "$oid" <<<"$holders"; then
      ok "$READ_ROLE assigned to $oid"
    else
      step "assign $READ_ROLE to $oid" az rest --method POST --url "$GRAPH/servicePrincipals/$sp_id/appRoleAssignedTo" \
        --headers "Content-Type=application/json" \
        --body "{\"principalId\":\"$oid\",\"resourceId\":\"$sp_id\",\"appRoleId\":\"$READ_ROLE_ID\"}"
    fi
  done
fi

if $dry_run; then
  echo "dry run: $changed change(s) would be made"
else
  echo "done: $changed change(s) made"
fi
echo "client id: $app_id"
echo "next: azd env set JIT_SIGNIN_CLIENT_ID $app_id && azd provision; assign $READ_ROLE to operators (--assign, or Enterprise applications > $name > Users and groups)"
