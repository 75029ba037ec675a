#!/usr/bin/env bash
# Records the current proto/ as the released contract (`npm run contract:lock`): writes the buf image
# proto/workflow.lock.binpb that `npm run check:contract` compares every later change against.
# Run it when the contract has grown compatibly and the change is merged, then commit the lock on its own.
# Refuses a breaking change unless given --allow-break (then the lock commit needs a Contract-Break: trailer).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF=node_modules/.bin/buf
LOCK=proto/workflow.lock.binpb
allow_break=false
case "${1:-}" in
  "") ;;
  --allow-break) allow_break=true ;;
  *) echo "usage: npm run contract:lock [-- --allow-break]" >&2; exit 2 ;;
esac

"$BUF" lint
if [ -f "$LOCK" ] && ! "$BUF" breaking proto --against "$LOCK"; then
  if [ "$allow_break" != true ]; then
    echo "contract:lock: proto/ breaks the current lock (above); not relocking. Make the change compatible or add a new
package version (workflow.v2). If the break is truly intended, rerun with -- --allow-break." >&2
    exit 1
  fi
  echo "contract:lock: recording a BREAKING change on purpose" >&2
fi

# Without source info the image changes only when the schema does, not when a comment does.
"$BUF" build proto --exclude-source-info -o "$LOCK"

if git diff --quiet -- "$LOCK" 2>/dev/null && git ls-files --error-unmatch "$LOCK" >/dev/null 2>&1; then
  echo "contract:lock: $LOCK unchanged"
  exit 0
fi
trailer=""
[ "$allow_break" = true ] && trailer=" -m 'Contract-Break: <why every client must change>'"
echo "contract:lock: wrote $LOCK. Commit it on its own (nothing else in the commit):"
echo "  git add $LOCK && git commit -m 'Contract: lock workflow API after <what grew>'$trailer"
