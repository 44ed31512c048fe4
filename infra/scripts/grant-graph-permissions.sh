#!/usr/bin/env bash
# Grant jitaccess's managed identity the Microsoft Graph application permissions its profiles need
# (docs/design.md, Operations), and nothing more: the set is computed from profiles.json. Idempotent: what is
# already granted is left as it is. Run by a Privileged Role Administrator (or Global
# Administrator) signed in with `az login`; --dry-run prints what would be done, --list only the
# computed set (no Azure CLI needed). Needs bash and jq.
#
#   infra/scripts/grant-graph-permissions.sh [--profiles FILE] [--principal-id OID] [--pim-read]
#       [--admin-unit AU_ID [--admin-unit-role ROLE_ID]] [--role-assignable-groups] [--prune]
#       [--list | --dry-run]
#
# --profiles     the profiles.json that is deployed; default $PROFILES, then ./profiles.json.
# --principal-id the identity's object id; default $MANAGED_IDENTITY_PRINCIPAL_ID, then the azd
#                environment's output of that name (infra/main.bicep).
# --pim-read     also PrivilegedAssignmentSchedule.Read.AzureADGroup without a "pim" profile, when
#                target groups are managed in PIM outside jitaccess: observed activations then
#                end exactly when PIM ends them (without it, at the end the audit record states).
# --admin-unit   write group memberships through an Entra role scoped to this administrative unit
#                (which must hold every target group) instead of the tenant-wide
#                GroupMember.ReadWrite.All: Groups Administrator at the unit, Directory Readers at
#                the tenant (required for a service principal to use a unit-scoped role), and
#                GroupMember.Read.All. --admin-unit-role: a custom role's id instead of Groups
#                Administrator (e.g. one holding only microsoft.directory/groups/members/update).
# --role-assignable-groups  also RoleManagement.ReadWrite.Directory, needed when a target group
#                is role-assignable (isAssignableToRole): lets the app assign any directory role.
# --prune        remove the permissions of the list below that are granted but no longer needed.
#                Without it they are only reported ("extra"). Nothing outside the list is touched.
#
# Which profile needs what (SECURITY.md, "The managed identity and its Graph permissions"):
#   every profile            User.Read.All, and GroupMember.Read.All (covered by ReadWrite)
#   activation membership,
#   or outOfBand remove      GroupMember.ReadWrite.All (or the --admin-unit role)
#   revokeSessionsOnEnd
#   (default true)           User.RevokeSessions.All (also whenever memberships are written)
#   activation pim           PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup
#   activation azure-role    nothing more in Graph (Azure RBAC, infra/modules/rbac-scope.bicep)
set -euo pipefail

GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
GRAPH="https://graph.microsoft.com/v1.0"

# Application permission (app role) ids of Microsoft Graph, the same in every tenant. The script
# also resolves each by name from the tenant's Graph service principal and stops on a mismatch.
# This is the whole list the script manages; --prune never removes anything else.
CATALOGUE=(
  "User.Read.All=df021288-bdef-4463-88db-98f22de89214"
  "GroupMember.Read.All=98830695-27a2-44f7-8c18-0c3ebc9698f6"
  "GroupMember.ReadWrite.All=dbaae8cf-10b5-4b86-a4a1-f871c94c6695"
  "User.RevokeSessions.All=77f3a031-c388-4f99-b373-dc68676a979e"
  "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup=41202f2c-f7ab-45be-b001-85c9728b9d69"
  "PrivilegedAssignmentSchedule.Read.AzureADGroup=cd4161cb-f098-48f8-a884-1eda9a42434c"
  "RoleManagement.ReadWrite.Directory=9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"
)
# Built-in Microsoft Entra role template ids (the role definition ids of built-in roles).
GROUPS_ADMINISTRATOR="fdd7a751-b60b-444a-984c-02652fe8fa1c"
DIRECTORY_READERS="88d8e3e3-8f55-4a1e-953a-9b9898b8876b"

usage() { sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; }

mode=grant # grant | dry-run | list
principal_id="${MANAGED_IDENTITY_PRINCIPAL_ID:-}"
profiles="${PROFILES:-}"
pim_read=false
role_assignable=false
prune=false
admin_unit=""
admin_unit_role="$GROUPS_ADMINISTRATOR"
guid='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) mode=dry-run ;;
    --list) mode=list ;;
    --principal-id) principal_id="${2:?--principal-id needs a value}"; shift ;;
    --profiles) profiles="${2:?--profiles needs a value}"; shift ;;
    --pim-read) pim_read=true ;;
    --role-assignable-groups) role_assignable=true ;;
    --admin-unit) admin_unit="${2:?--admin-unit needs a value}"; shift ;;
    --admin-unit-role) admin_unit_role="${2:?--admin-unit-role needs a value}"; shift ;;
    --prune) prune=true ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------------
# What the profiles need.
if ! command -v jq >/dev/null 2>&1; then
  echo "jq is needed to read profiles.json (apt-get install jq, brew install jq; Azure Cloud Shell has it)" >&2
  exit 1
fi
if [ -z "$profiles" ] && [ -f profiles.json ]; then
  profiles=profiles.json
fi
if [ -z "$profiles" ]; then
  echo "no profiles: pass --profiles FILE or set PROFILES (the profiles.json you deploy)" >&2
  exit 2
fi
if [ ! -f "$profiles" ]; then
  echo "--profiles $profiles: no such file" >&2
  exit 2
fi
if [ -n "$admin_unit" ] && ! [[ "$admin_unit" =~ $guid ]]; then
  echo "--admin-unit $admin_unit is not an administrative unit object id (GUID)" >&2
  exit 2
fi
if ! [[ "$admin_unit_role" =~ $guid ]]; then
  echo "--admin-unit-role $admin_unit_role is not a role definition id (GUID)" >&2
  exit 2
fi
if [ -n "$admin_unit" ] && $role_assignable; then
  echo "--admin-unit and --role-assignable-groups exclude each other: roles scoped to an administrative unit cannot change the membership of role-assignable groups (Groups Administrator: \"excluding role-assignable groups\"); those need RoleManagement.ReadWrite.Directory tenant-wide" >&2
  exit 2
fi

# One line per profile: activation, revokeSessionsOnEnd, outOfBand, targetGroupId (the fields
# internal/policy reads, with its defaults: membership, true, record).
if ! rows="$(jq -r '
    if (.profiles | type) != "array" or (.profiles | length) == 0 then error("no profiles: expected {\"profiles\":[...]}") else . end
    | .profiles[]
    | [ (.activation // "membership"),
        (if .revokeSessionsOnEnd == false then "no" else "yes" end),
        (.outOfBand // "record"),
        (.targetGroupId // "" | ascii_downcase) ] | @tsv' "$profiles" 2>&1)"; then
  echo "$profiles: $rows" >&2
  exit 2
fi

n_membership=0 n_pim=0 n_role=0
any_revoke=false oob_remove=false
targets=()
while IFS=$'\t' read -r activation revoke oob target; do
  case "$activation" in
    membership) n_membership=$((n_membership + 1)) ;;
    pim) n_pim=$((n_pim + 1)) ;;
    azure-role) n_role=$((n_role + 1)) ;;
    *) echo "$profiles: activation \"$activation\": must be membership, pim or azure-role" >&2; exit 2 ;;
  esac
  [ "$revoke" = yes ] && any_revoke=true
  if [ -n "$target" ]; then
    [ "$oob" = remove ] && oob_remove=true
    case " ${targets[*]:-} " in *" $target "*) ;; *) targets+=("$target") ;; esac
  fi
done <<<"$rows"

# Each needed permission with the reason, in the order of the catalogue.
needed=()
why=()
need() { needed+=("$1"); why+=("$2"); }
group_write=false
if [ "$n_membership" -gt 0 ] || $oob_remove; then
  group_write=true
fi
need User.Read.All "resolve requesters and approvers (GET /users/{id|upn})"
oob_note=""
$oob_remove && oob_note=", outOfBand remove"
if $group_write && [ -z "$admin_unit" ]; then
  need GroupMember.ReadWrite.All "add/remove members of the target groups ($n_membership membership profile(s)$oob_note); also covers the membership reads"
else
  need GroupMember.Read.All "checkMemberGroups on eligible/approver groups; list target groups' direct members"
fi
if $any_revoke || $group_write; then
  need User.RevokeSessions.All "revokeSignInSessions at a grant's end (revokeSessionsOnEnd) and after removing a leftover member"
fi
if [ "$n_pim" -gt 0 ]; then
  need PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup "adminAssign/adminRemove for $n_pim pim profile(s); also covers reading assignmentScheduleInstances"
elif $pim_read; then
  need PrivilegedAssignmentSchedule.Read.AzureADGroup "--pim-read: read PIM activations' ends (assignmentScheduleInstances)"
fi
if $role_assignable; then
  need RoleManagement.ReadWrite.Directory "--role-assignable-groups: membership changes of role-assignable target groups"
fi

roles=() # "roleDefinitionId scope name"
if [ -n "$admin_unit" ]; then
  if $group_write; then
    role_name="custom role $admin_unit_role"
    [ "$admin_unit_role" = "$GROUPS_ADMINISTRATOR" ] && role_name="Groups Administrator"
    roles+=("$admin_unit_role /administrativeUnits/$admin_unit $role_name")
    roles+=("$DIRECTORY_READERS / Directory Readers")
  else
    echo "# --admin-unit ignored: no profile writes group memberships (no membership profile, no outOfBand remove)" >&2
  fi
fi

if [ "$mode" = list ]; then
  for i in "${!needed[@]}"; do
    printf 'graph\t%s\t%s\n' "${needed[$i]}" "${why[$i]}"
  done
  for r in ${roles[@]+"${roles[@]}"}; do
    read -r rid scope rname <<<"$r"
    printf 'entra-role\t%s\t%s at %s\n' "$rid" "$rname" "$scope"
  done
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Granting.
if [ -z "$principal_id" ] && command -v azd >/dev/null 2>&1; then
  principal_id="$(azd env get-value MANAGED_IDENTITY_PRINCIPAL_ID 2>/dev/null || true)"
fi
if [ -z "$principal_id" ]; then
  echo "no principal id: pass --principal-id, set MANAGED_IDENTITY_PRINCIPAL_ID, or run 'azd provision' first" >&2
  exit 2
fi
if ! [[ "$principal_id" =~ $guid ]]; then
  echo "--principal-id $principal_id is not an object id (GUID)" >&2
  exit 2
fi

online=true
if ! command -v az >/dev/null 2>&1 || ! az account show >/dev/null 2>&1; then
  if [ "$mode" != dry-run ]; then
    echo "the Azure CLI is not installed or not signed in: run 'az login' (or use --dry-run)" >&2
    exit 1
  fi
  online=false
  echo "# dry run without a signed-in Azure CLI: nothing is looked up, every grant is listed"
fi
dry=false
[ "$mode" = dry-run ] && dry=true

catalogue_id() {
  local e
  for e in "${CATALOGUE[@]}"; do
    if [ "${e%%=*}" = "$1" ]; then echo "${e#*=}"; return; fi
  done
  echo "internal error: $1 is not in the catalogue" >&2
  exit 3
}

graph_sp=""
existing=""
if $online; then
  graph_sp="$(az rest --method GET --url "$GRAPH/servicePrincipals(appId='$GRAPH_APP_ID')?\$select=id" --query id -o tsv)"
  # appRoleId <tab> assignment id, one line per Graph app role the identity holds.
  existing="$(az rest --method GET --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments?\$top=999" \
    --query "value[?resourceId=='$graph_sp'].[appRoleId, id]" -o tsv)"

  # Target groups: role-assignable ones refuse membership writes without
  # RoleManagement.ReadWrite.Directory, and no administrative-unit role can write them.
  if $group_write; then
    for g in ${targets[@]+"${targets[@]}"}; do
      ra="$(az rest --method GET --url "$GRAPH/groups/$g?\$select=isAssignableToRole" --query isAssignableToRole -o tsv | tr '[:upper:]' '[:lower:]')"
      if [ "$ra" = true ] && ! $role_assignable; then
        echo "target group $g is role-assignable: its membership can be written only with --role-assignable-groups (RoleManagement.ReadWrite.Directory, tenant-wide), never through --admin-unit; prefer an ordinary group (SECURITY.md)" >&2
        exit 1
      fi
    done
  fi
  if [ ${#roles[@]} -gt 0 ]; then
    au_groups="$(az rest --method GET --url "$GRAPH/directory/administrativeUnits/$admin_unit/members/microsoft.graph.group?\$select=id&\$top=999" \
      --query "value[].id" -o tsv)"
    for g in ${targets[@]+"${targets[@]}"}; do
      if ! grep -qix "$g" <<<"$au_groups"; then
        echo "target group $g is not a member of administrative unit $admin_unit: add it first (a Privileged Role Administrator), or the app cannot change its membership" >&2
        exit 1
      fi
    done
  fi
fi

changed=0
for i in "${!needed[@]}"; do
  name="${needed[$i]}"
  role_id="$(catalogue_id "$name")"
  if $online; then
    resolved="$(az rest --method GET --url "$GRAPH/servicePrincipals/$graph_sp?\$select=appRoles" \
      --query "appRoles[?value=='$name' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
    if [ "$resolved" != "$role_id" ]; then
      echo "Graph app role $name resolves to '$resolved', expected $role_id: stopping" >&2
      exit 1
    fi
    if cut -f1 <<<"$existing" | grep -qix "$role_id"; then
      echo "ok       $name (already granted)"
      continue
    fi
  fi
  body="{\"principalId\":\"$principal_id\",\"resourceId\":\"${graph_sp:-<Microsoft Graph service principal id>}\",\"appRoleId\":\"$role_id\"}"
  if $dry; then
    echo "would    $name: POST $GRAPH/servicePrincipals/$principal_id/appRoleAssignments $body   # ${why[$i]}"
  else
    az rest --method POST --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments" \
      --headers "Content-Type=application/json" --body "$body" --output none
    echo "granted  $name"
  fi
  changed=$((changed + 1))
done

# Microsoft Entra roles (--admin-unit): assigned to the identity's service principal.
if [ ${#roles[@]} -gt 0 ]; then
  assigned=""
  if $online; then
    assigned="$(az rest --method GET --url "$GRAPH/roleManagement/directory/roleAssignments?\$filter=principalId eq '$principal_id'" \
      --query "value[].[roleDefinitionId, directoryScopeId]" -o tsv)"
  fi
  for r in ${roles[@]+"${roles[@]}"}; do
    read -r rid scope rname <<<"$r"
    if $online && grep -qix "$(printf '%s\t%s' "$rid" "$scope")" <<<"$assigned"; then
      echo "ok       $rname at $scope (already assigned)"
      continue
    fi
    body="{\"principalId\":\"$principal_id\",\"roleDefinitionId\":\"$rid\",\"directoryScopeId\":\"$scope\"}"
    if $dry; then
      echo "would    $rname at $scope: POST $GRAPH/roleManagement/directory/roleAssignments $body"
    else
      az rest --method POST --url "$GRAPH/roleManagement/directory/roleAssignments" \
        --headers "Content-Type=application/json" --body "$body" --output none
      echo "assigned $rname at $scope"
    fi
    changed=$((changed + 1))
  done
fi

# Permissions of the catalogue that are granted but not needed by these profiles.
removed=0
if $online; then
  for e in "${CATALOGUE[@]}"; do
    name="${e%%=*}" role_id="${e#*=}"
    case " ${needed[*]} " in *" $name "*) continue ;; esac
    line="$(grep -i "^$role_id" <<<"$existing" || true)"
    [ -n "$line" ] || continue
    assignment="$(cut -f2 <<<"$line" | head -1)"
    if ! $prune; then
      echo "extra    $name (granted, not needed by $profiles: remove with --prune)"
    elif $dry; then
      echo "would    remove $name: DELETE $GRAPH/servicePrincipals/$principal_id/appRoleAssignments/$assignment"
      removed=$((removed + 1))
    else
      az rest --method DELETE --url "$GRAPH/servicePrincipals/$principal_id/appRoleAssignments/$assignment" --output none
      echo "removed  $name"
      removed=$((removed + 1))
    fi
  done
fi

if $dry; then
  echo "dry run: $changed grant(s) would be made, $removed removal(s)"
else
  echo "done: $changed grant(s) made, $removed removed; tokens issued before now do not carry the change (the app picks it up within the token lifetime, or restart it)"
fi
