#!/usr/bin/env bash
# A runner for `gspc-codegen tune --runner` that runs the tuning batch on a board over ssh:
#   gspc-codegen tune SPEC --db pi4.jsonl --target aarch64-unknown-linux-gnu \
#     --runner "scripts/ssh-runner.sh pi@raspberrypi.local"
# It gets the host (any ssh destination), then the program's path and its arguments, as
# Cargo's target runner does: it copies the program to a temporary file on the board, runs
# it there with the arguments (its output comes back on stdout), and removes it.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 HOST PROGRAM [ARGS...]" >&2
  exit 2
fi
host=$1
program=$2
shift 2
remote=$(ssh "$host" mktemp /tmp/gspc-tune-batch.XXXXXX)
trap 'ssh "$host" rm -f "$remote" >/dev/null 2>&1 || true' EXIT
scp -q "$program" "$host:$remote"
ssh "$host" chmod +x "$remote"
# Arguments are the batch's own (--threads 1,2 --rounds 7): no quoting is needed.
ssh "$host" "$remote" "$@"
