#!/usr/bin/env bash
# A walk through presenced's HTTP API with curl. Run it against a presenced
# you may change (it sets and restores one user's presence):
#
#   PRESENCED_URL=http://127.0.0.1:4574 PRESENCED_TOKEN=admin-token... ./examples/curl.sh
#
# PRESENCED_URL defaults to http://127.0.0.1:4574; PRESENCED_TOKEN may be
# empty when the API has no tokens (then only loopback clients are served).
# USER_EXT is the user whose presence is set (default 1001). WEBHOOK_URL,
# when set, gets a webhook for that user's presence, deleted at the end.
set -euo pipefail

API="${PRESENCED_URL:-http://127.0.0.1:4574}"
USER_EXT="${USER_EXT:-1001}"
auth=()
if [ -n "${PRESENCED_TOKEN:-}" ]; then
  auth=(-H "Authorization: Bearer ${PRESENCED_TOKEN}")
fi
# -f: an error status fails the script; the API's JSON error is shown.
api() { curl -sS --fail-with-body "${auth[@]}" "$@"; echo; }
step() { printf '\n== %s\n' "$*"; }

step "Is it up? (no token needed)"
curl -sS --fail-with-body "$API/healthz"

step "What may this token do?"
api "$API/v1/whoami"

step "The hints and their states"
api "$API/v1/hints"

step "Set $USER_EXT away for 30 minutes (writes need Content-Type: application/json)"
api -X PUT -H 'Content-Type: application/json' \
  -d '{"state":"away","message":"Lunch","for":"30m"}' "$API/v1/presence/$USER_EXT"

step "Read it back"
api "$API/v1/presence/$USER_EXT"

step "Every provider's presence"
api "$API/v1/presence"

if [ -n "${WEBHOOK_URL:-}" ]; then
  step "A webhook for $USER_EXT's presence (admin token); its secret is shown once"
  created=$(api -X POST -H 'Content-Type: application/json' \
    -d "{\"url\":\"$WEBHOOK_URL\",\"providers\":[\"CustomPresence:$USER_EXT\"],\"description\":\"curl walkthrough\"}" \
    "$API/v1/webhooks")
  echo "$created"
  id=$(printf '%s' "$created" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')

  step "Send it a test event"
  api -X POST -H 'Content-Type: application/json' "$API/v1/webhooks/$id/test"

  step "Delete it"
  api -X DELETE "$API/v1/webhooks/$id"
fi

step "Restore the presence $USER_EXT had before"
api -X POST -H 'Content-Type: application/json' "$API/v1/presence/$USER_EXT/restore"

step "Done"
