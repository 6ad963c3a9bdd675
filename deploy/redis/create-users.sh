#!/usr/bin/env bash
# Creates (or resets) the outq Redis users of deploy/redis/outq-users.acl for one queue.
#   OUTQ_WORKER_PASSWORD=… OUTQ_PRODUCER_PASSWORD=… OUTQ_OPERATOR_PASSWORD=… OUTQ_DASHBOARD_PASSWORD=… \
#     deploy/redis/create-users.sh [--queue NAME] [--save] [redis-cli options: -h HOST -p PORT --tls --user admin --pass …]
# A user whose password variable is unset or empty is skipped (said on stderr). --save: ACL SAVE
# afterwards (Redis started with an aclfile). Passwords go to redis-cli on stdin, never on a command line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
queue=default save=0
cli_args=()
while (($#)); do
  case $1 in
    --queue) queue=$2; shift 2 ;;
    --save) save=1; shift ;;
    *) cli_args+=("$1"); shift ;;
  esac
done
if [[ ! $queue =~ ^[A-Za-z0-9_.-]+$ ]]; then
  echo "create-users: queue name '$queue': letters, digits, _ . - only" >&2; exit 2
fi
commands=""
while read -r word name rules; do
  [[ $word == user ]] || continue
  var=OUTQ_$(echo "${name#outq-}" | tr a-z A-Z)_PASSWORD
  password=${!var:-}
  if [[ -z $password ]]; then echo "create-users: $var is not set: $name skipped" >&2; continue; fi
  if [[ $password =~ [[:space:]\"\'] ]]; then echo "create-users: $var: no spaces or quotes" >&2; exit 2; fi
  rules=${rules//\{default\}/\{$queue\}}
  rules=${rules//\{default@/\{$queue@}
  commands+="ACL SETUSER $name reset $rules >$password"$'\n'
done < <(grep -E '^user ' "$here/outq-users.acl")
[[ -n $commands ]] || { echo "create-users: no password set: nothing to do" >&2; exit 2; }
((save)) && commands+="ACL SAVE"$'\n'
out=$(printf '%s' "$commands" | redis-cli "${cli_args[@]}" 2>&1)
echo "$out"
if grep -qvx OK <<<"$out"; then echo "create-users: Redis refused a command (above)" >&2; exit 1; fi
