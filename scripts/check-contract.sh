#!/usr/bin/env bash
# Contract checks (CI runs them through `npm run check:contract`):
#   1. buf lint: the .proto files follow buf's STANDARD rules.
#   2. buf breaking: nothing in proto/ breaks the released contract recorded in the lock image.
#   3. The lock never moves silently: every commit that changed it changed nothing else, and every version
#      of it is compatible with the one before, unless that commit's message carries a `Contract-Break:` trailer.
# Regenerate the lock on purpose with `npm run contract:lock` (see docs/clients.md, "Compatibility").
set -euo pipefail
cd "$(dirname "$0")/.."

BUF=node_modules/.bin/buf
LOCK=proto/workflow.lock.binpb

fail() { echo "check-contract: FAILED: $*" >&2; exit 1; }

[ -x "$BUF" ] || fail "$BUF is missing; run npm ci"
[ -f "$LOCK" ] || fail "$LOCK is missing; it is committed with the repository (restore it with git checkout -- $LOCK)"

echo "== buf lint"
"$BUF" lint || fail "buf lint found problems (above)"

echo "== buf breaking proto --against $LOCK"
"$BUF" breaking proto --against "$LOCK" ||
  fail "proto/ breaks the released contract (above). Make the change compatible (add fields, reserve removed numbers
and names), or put the new shape in a new package version (workflow.v2). Regenerating the lock does not fix this."

echo "== lock history: $LOCK moves only in commits of its own, each compatible with the previous lock"
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "WARNING: not a git checkout; lock history not checked" >&2
  exit 0
fi
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  echo "WARNING: shallow clone; lock history not checked (git fetch --unshallow to check it)" >&2
  exit 0
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/check-contract.XXXXXX")
trap 'rm -rf -- "$scratch"' EXIT
previous=""
count=0
for commit in $(git log --no-merges --reverse --format=%H -- "$LOCK"); do
  count=$((count + 1))
  subject="$(git log -1 --format='%h %s' "$commit")"
  others="$(git show --name-only --format= "$commit" | grep -vxF "$LOCK" || true)"
  [ -z "$others" ] ||
    fail "commit $subject changes $LOCK together with other files:
$others
A lock change must be a commit of its own, so a reviewer sees the contract move."
  if [ -n "$previous" ] && git cat-file -e "$commit:$LOCK" 2>/dev/null; then
    git show "$previous:$LOCK" >"$scratch/previous.binpb"
    git show "$commit:$LOCK" >"$scratch/current.binpb"
    if git log -1 --format=%B "$commit" | grep -q '^Contract-Break:'; then
      echo "accepted on purpose: $subject ($(git log -1 --format=%B "$commit" | grep '^Contract-Break:' | head -1))"
    else
      "$BUF" breaking "$scratch/current.binpb" --against "$scratch/previous.binpb" ||
        fail "commit $subject moved the lock to a contract that breaks the previous lock (above).
If that break is truly intended, the lock commit must say why in a 'Contract-Break: <reason>' trailer."
    fi
  fi
  git cat-file -e "$commit:$LOCK" 2>/dev/null && previous="$commit"
done
[ "$count" -gt 0 ] || fail "$LOCK has never been committed; commit it on its own (npm run contract:lock)"
echo "contract OK ($count lock commit(s) checked)"
