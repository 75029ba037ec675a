#!/usr/bin/env bash
# The whole journey through grpcurl against a running server: health, reflection, definitions,
# validation, an instance through a review loop, idempotent replays, rejected actions with their
# error details, an optimistic-concurrency conflict, history, listing and stats.
#
#   ADDR=localhost:50051 samples/walkthrough.sh      (ADDR defaults to localhost:50051)
#
# Needs grpcurl on PATH (or test/tools/grpcurl, the stand-in: PATH="$PWD/test/tools:$PATH").
# Safe to run again against the same server: definitions are re-applied unchanged (created is
# false) and instance ids carry RUN_ID (default: the current time and this shell's pid).
set -euo pipefail

ADDR=${ADDR:-localhost:50051}
RUN_ID=${RUN_ID:-$(date +%s)-$$}
SAMPLES=$(cd "$(dirname "$0")" && pwd)
SERVICE=workflow.v1.WorkflowService
REVIEW="review-$RUN_ID"
ORDER="order-$RUN_ID"

step() { printf '\n### %s\n' "$*"; }

# rpc METHOD JSON: prints the grpcurl command, then runs it.
rpc() {
  printf "\$ grpcurl -plaintext -d '%s' %s %s/%s\n" "$2" "$ADDR" "$SERVICE" "$1"
  grpcurl -plaintext -d "$2" "$ADDR" "$SERVICE/$1"
}

# rpc_file METHOD FILE: the request is a sample file, read from stdin (-d @).
rpc_file() {
  printf '$ grpcurl -plaintext -d @ %s %s/%s < samples/%s\n' "$ADDR" "$SERVICE" "$1" "$2"
  grpcurl -plaintext -d @ "$ADDR" "$SERVICE/$1" <"$SAMPLES/$2"
}

# expect_status NAME CODE command...: the command must fail with that gRPC status; grpcurl exits
# with 64 + the status code. Anything else stops the walkthrough.
expect_status() {
  local name=$1 code=$2 rc=0
  shift 2
  "$@" || rc=$?
  if [ "$rc" -ne $((64 + code)) ]; then
    echo "walkthrough: expected $name (grpcurl exit $((64 + code))), got exit $rc" >&2
    exit 1
  fi
  echo "(grpcurl exited with $rc = 64 + $code: $name, as expected)"
}

step "1. The server is up: health for the whole server and for the workflow service"
echo "\$ grpcurl -plaintext -d '{\"service\": \"\"}' $ADDR grpc.health.v1.Health/Check"
grpcurl -plaintext -d '{"service": ""}' "$ADDR" grpc.health.v1.Health/Check
echo "\$ grpcurl -plaintext -d '{\"service\": \"$SERVICE\"}' $ADDR grpc.health.v1.Health/Check"
grpcurl -plaintext -d "{\"service\": \"$SERVICE\"}" "$ADDR" grpc.health.v1.Health/Check

step "2. Reflection: the services and the RPCs they offer"
echo "\$ grpcurl -plaintext $ADDR list"
grpcurl -plaintext "$ADDR" list
echo "\$ grpcurl -plaintext $ADDR list $SERVICE"
grpcurl -plaintext "$ADDR" list "$SERVICE"

step "3. Create the sample definitions (re-applying identical content returns the stored version; created is then false, which grpcurl omits)"
rpc_file CreateDefinition approval.json
rpc_file CreateDefinition document-review.json
rpc_file CreateDefinition order-fulfilment.json

step "4. Read one back (version 0 = the latest)"
rpc GetDefinition '{"definition_id": "document-review"}'

step "5. Validate a broken definition: every problem at once, each with a field path and a fix"
rpc ValidateDefinition '{"definition": {"id": "broken", "states": [
  {"id": "open", "initial": true}, {"id": "open"}, {"id": "closed", "initial": true, "final": true},
  {"id": "limbo"}],
  "actions": [{"id": "close", "from_states": ["open", "open"], "to_state": "done"}]}}'

step "6. Start a review (client-chosen instance_id, and a request_id that makes retries safe)"
rpc StartInstance "{\"definition_id\": \"document-review\", \"instance_id\": \"$REVIEW\", \"request_id\": \"start-$REVIEW\"}"

step "7. Where is it, and what can be done now?"
rpc GetInstance "{\"instance_id\": \"$REVIEW\"}"

step "8. Submit it for review"
rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"submit\", \"request_id\": \"submit-$REVIEW\"}"

step "9. A retry with the same request_id returns the original response and changes nothing (still version 2)"
rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"submit\", \"request_id\": \"submit-$REVIEW\"}"

step "10. The same request_id for a different request is refused"
expect_status AlreadyExists 6 \
  rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"approve\", \"request_id\": \"submit-$REVIEW\"}"

step "11. The send-back-for-revision loop, with optimistic concurrency (expected_version)"
rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"request_changes\", \"expected_version\": 2}"
rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"resubmit\", \"expected_version\": 3}"

step "12. A rejected action: publishing straight from review; the details name the current state and the allowed actions"
expect_status FailedPrecondition 9 \
  rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"publish\"}"

step "13. A stale expected_version: somebody else moved the instance since version 2"
expect_status Aborted 10 \
  rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"approve\", \"expected_version\": 2}"

step "14. Approve at the current version, then publish: the instance completes"
rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"approve\", \"expected_version\": 4}"
rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"publish\"}"

step "15. A completed instance accepts no more actions"
expect_status FailedPrecondition 9 \
  rpc ExecuteAction "{\"instance_id\": \"$REVIEW\", \"action_id\": \"abandon\"}"

step "16. The full history: the start, then every transition"
rpc ListInstanceHistory "{\"instance_id\": \"$REVIEW\"}"

step "17. An order cancelled after payment (cancel is allowed from placed, paid and picking)"
rpc StartInstance "{\"definition_id\": \"order-fulfilment\", \"instance_id\": \"$ORDER\"}"
rpc ExecuteAction "{\"instance_id\": \"$ORDER\", \"action_id\": \"pay\"}"
rpc ListAvailableActions "{\"instance_id\": \"$ORDER\"}"
rpc ExecuteAction "{\"instance_id\": \"$ORDER\", \"action_id\": \"cancel\"}"

step "18. Completed document reviews, and the server's counters"
rpc ListInstances '{"definition_id": "document-review", "status": "INSTANCE_STATUS_COMPLETED", "page_size": 5}'
rpc GetServiceStats '{}'

printf '\nwalkthrough complete (RUN_ID=%s)\n' "$RUN_ID"
