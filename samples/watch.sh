#!/usr/bin/env bash
# Watch instances change as it happens, through grpcurl: run it in one terminal and
# samples/walkthrough.sh (or your own calls) in another. Stop it with Ctrl-C.
#
#   samples/watch.sh                        every change of every instance, from now (WatchInstances)
#   samples/watch.sh -d document-review     only instances of one definition (it need not exist yet)
#   samples/watch.sh -r 42                  every change from revision 42 on, then live
#   samples/watch.sh review-demo            one instance (WatchInstance): a snapshot now, then live
#   samples/watch.sh -v 1 review-demo       one instance: its whole history from version 1, then live
#
# A WatchInstance stream ends by itself (exit 0) after the change that puts the instance in a final
# state. To resume after a disconnect, pass the last revision seen + 1 to -r (WatchInstances prints
# a "progress" revision while idle), or the last version seen + 1 to -v. Responses go to stdout, one
# JSON object each; the grpcurl command goes to stderr first.
#
# ADDR defaults to localhost:50051. Needs grpcurl on PATH (or the stand-in the tests use:
# PATH="$PWD/test/tools:$PATH"). Try it with the walkthrough, whose review is "review-$RUN_ID":
#   terminal 1: npm start
#   terminal 2: samples/watch.sh -d document-review
#   terminal 3: RUN_ID=demo samples/walkthrough.sh
#   afterwards: samples/watch.sh -v 1 review-demo   (replays its whole life, then exits: it completed)
set -euo pipefail

ADDR=${ADDR:-localhost:50051}
SERVICE=workflow.v1.WorkflowService
# usage CODE: the examples above, on stdout for -h (CODE 0), on stderr for a mistake.
usage() {
  if [ "$1" -eq 0 ]; then sed -n '5,9p' "$0" | sed 's/^# *//'; else sed -n '5,9p' "$0" | sed 's/^# *//' >&2; fi
  exit "$1"
}

definition="" revision=0 version=0
while getopts "d:r:v:h" opt; do
  case $opt in
    d) definition=$OPTARG ;;
    r) revision=$OPTARG ;;
    v) version=$OPTARG ;;
    h) usage 0 ;;
    *) usage 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage 2
for n in "$revision" "$version"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "watch.sh: -r and -v take a whole number, got \"$n\"" >&2; exit 2; }
done

if [ $# -eq 1 ]; then
  [ -z "$definition" ] && [ "$revision" = 0 ] || { echo "watch.sh: -d and -r are for watching all instances" >&2; exit 2; }
  method=WatchInstance
  request="{\"instance_id\": \"$1\", \"start_version\": $version}"
else
  [ "$version" = 0 ] || { echo "watch.sh: -v needs an instance id" >&2; exit 2; }
  method=WatchInstances
  request="{\"definition_id\": \"$definition\", \"start_revision\": \"$revision\"}"
fi

printf "\$ grpcurl -plaintext -d '%s' %s %s/%s\n" "$request" "$ADDR" "$SERVICE" "$method" >&2
exec grpcurl -plaintext -d "$request" "$ADDR" "$SERVICE/$method"
