#!/usr/bin/env bash
# The walkthrough over HTTP with curl, against a running server's HTTP listener:
#   Part 1, the JSON API (/v1, routes from the proto's google.api.http options): the sample definitions,
#   validation, an instance moved with ETag / If-Match and Idempotency-Key, refusals with their
#   google.rpc.Status bodies, history, listing, stats, and the instance's changes as server-sent events.
#   Part 2, the original REST API (/health, /api/...) as the old service's clients and scripts use it.
#
#   HTTP_ADDR=localhost:8080 samples/curl-walkthrough.sh     (HTTP_ADDR defaults to localhost:8080)
#
# Needs curl. Safe to run again against the same server: definitions are re-applied unchanged and
# instance ids carry RUN_ID (default: the current time and this shell's pid).
set -euo pipefail

HTTP_ADDR=${HTTP_ADDR:-localhost:8080}
RUN_ID=${RUN_ID:-$(date +%s)-$$}
BASE="http://$HTTP_ADDR"
SAMPLES=$(cd "$(dirname "$0")" && pwd)
REVIEW="review-$RUN_ID"
LEGACY="legacy-$RUN_ID"

step() { printf '\n### %s\n' "$*"; }

# http STATUS METHOD PATH [curl arguments...]: prints the curl command, the response body and its
# HTTP status; stops the walkthrough unless the status is STATUS.
http() {
  local expected=$1 method=$2 path=$3 out status
  shift 3
  printf '$ curl -s -X %s %s' "$method" "$BASE$path"
  for arg in "$@"; do
    case "$arg" in
      *[[:space:]\"\'\{\}\*]*) printf " '%s'" "$arg" ;;
      *) printf ' %s' "$arg" ;;
    esac
  done
  printf '\n'
  out=$(curl -sS -X "$method" "$BASE$path" -w '\n%{http_code}' "$@")
  status=${out##*$'\n'}
  printf '%s\n(HTTP %s)\n' "${out%$'\n'*}" "$status"
  if [ "$status" != "$expected" ]; then
    echo "curl-walkthrough: expected HTTP $expected, got $status" >&2
    exit 1
  fi
}

JSON=(-H 'Content-Type: application/json')

echo "======== Part 1: the JSON API (/v1)"

step "1. Create the sample definitions: the files are CreateDefinitionRequests, the same ones grpcurl sends"
for file in approval.json document-review.json order-fulfilment.json; do
  http 200 POST /v1/definitions "${JSON[@]}" -d @"$SAMPLES/$file"
done

step "2. Read one back; list them (query parameters are the request's fields)"
http 200 GET /v1/definitions/document-review
http 200 GET '/v1/definitions?pageSize=2'

step "3. Validate a broken definition: every problem at once, with field paths (HTTP 200, valid is false)"
http 200 POST /v1/definitions:validate "${JSON[@]}" -d '{"definition": {"id": "broken", "states": [
  {"id": "open", "initial": true}, {"id": "open"}], "actions": [{"id": "close", "from_states": ["open"], "to_state": "done"}]}}'

step "4. Start a review (Idempotency-Key is the request_id: a retry returns the same instance)"
http 200 POST /v1/instances "${JSON[@]}" -H "Idempotency-Key: start-$REVIEW" \
  -d "{\"definitionId\": \"document-review\", \"instanceId\": \"$REVIEW\"}"
http 200 POST /v1/instances "${JSON[@]}" -H "Idempotency-Key: start-$REVIEW" \
  -d "{\"definitionId\": \"document-review\", \"instanceId\": \"$REVIEW\"}"

step "5. Where is it? The ETag response header is its version"
http 200 GET "/v1/instances/$REVIEW" -i

step "6. Submit it with If-Match (= expected_version), then the revision loop"
http 200 POST "/v1/instances/$REVIEW/actions/submit" -H 'If-Match: "1"'
http 200 POST "/v1/instances/$REVIEW/actions/request_changes" -H 'If-Match: "2"'
http 200 POST "/v1/instances/$REVIEW/actions/resubmit"

step "7. A stale If-Match: 412 Precondition Failed with the google.rpc.Status (ABORTED / VERSION_MISMATCH)"
http 412 POST "/v1/instances/$REVIEW/actions/approve" -H 'If-Match: "2"'

step "8. A refused action: 400 with FAILED_PRECONDITION, the current state and the allowed actions"
http 400 POST "/v1/instances/$REVIEW/actions/publish"

step "9. An unknown instance: 404"
http 404 GET "/v1/instances/no-such-$RUN_ID"

step "10. Approve and publish: the instance completes"
http 200 GET "/v1/instances/$REVIEW/actions"
http 200 POST "/v1/instances/$REVIEW/actions/approve" -H 'If-Match: "4"'
http 200 POST "/v1/instances/$REVIEW/actions/publish"

step "11. Its whole life as server-sent events: replay from version 1; the stream ends after the final state"
printf '$ curl -sN %s\n' "$BASE/v1/instances/$REVIEW:watch?startVersion=1"
curl -sN "$BASE/v1/instances/$REVIEW:watch?startVersion=1"

step "12. History, completed reviews, and the counters"
http 200 GET "/v1/instances/$REVIEW/history"
http 200 GET '/v1/instances?definitionId=document-review&status=INSTANCE_STATUS_COMPLETED&pageSize=5'
http 200 GET /v1/stats

echo
echo "======== Part 2: the original REST API (/health, /api)"

step "13. Health"
http 200 GET /health
http 200 GET /api/health

step "14. Create a definition in the old format (is_initial, is_final, from_states, to_state)"
http 200 POST /api/definitions "${JSON[@]}" -d '{"id": "ticket", "name": "Support ticket", "states": [
  {"id": "open", "name": "Open", "is_initial": true},
  {"id": "working", "name": "Working"},
  {"id": "closed", "name": "Closed", "is_final": true}],
  "actions": [
  {"id": "start", "name": "Start work", "from_states": ["open"], "to_state": "working"},
  {"id": "close", "name": "Close", "from_states": ["open", "working"], "to_state": "closed"}]}'
http 200 GET /api/definitions/ticket
http 200 GET /api/definitions

step "15. The same id with other content, and an invalid definition: 400 with the reason"
http 400 POST /api/definitions "${JSON[@]}" -d '{"id": "ticket", "name": "Another ticket", "states": [{"id": "open", "is_initial": true, "is_final": true}], "actions": []}'
http 400 POST /api/definitions "${JSON[@]}" -d '{"id": "bad", "name": "Bad", "states": [{"id": "a"}, {"id": "a"}], "actions": []}'

step "16. Start an instance, look at it and at what it can do"
http 200 POST /api/instances "${JSON[@]}" -d "{\"definition_id\": \"ticket\", \"instance_id\": \"$LEGACY\"}"
http 404 POST /api/instances "${JSON[@]}" -d '{"definition_id": "no-such-definition"}'
http 200 GET "/api/instances/$LEGACY"
http 200 GET "/api/instances/$LEGACY/actions"

step "17. Execute actions: an unknown one (404), then start and close; a closed ticket refuses more (400)"
http 404 POST "/api/instances/$LEGACY/actions/escalate"
http 200 POST "/api/instances/$LEGACY/actions/start"
http 400 POST "/api/instances/$LEGACY/actions/start"
http 200 POST "/api/instances/$LEGACY/actions/close"
http 400 POST "/api/instances/$LEGACY/actions/close"
http 404 GET "/api/instances/no-such-$RUN_ID"

step "18. Every instance"
http 200 GET /api/instances

printf '\ncurl walkthrough complete (RUN_ID=%s)\n' "$RUN_ID"
