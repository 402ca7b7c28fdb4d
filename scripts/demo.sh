#!/usr/bin/env bash
# make demo: the whole protocol in one command, on testdata/servers.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./lockstep
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cp testdata/servers.jsonl "$work/servers.jsonl"
"$bin" serve --addr 127.0.0.1:0 "$work/servers.jsonl" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 50); do grep -q 'serving' "$work/serve.log" && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' "$work/serve.log")servers/"
say "lockstep serve testdata/servers.jsonl  ->  $url"

say "lockstep tail --once $url | head -3     (JSON lines, as | jq sees them)"
"$bin" tail --once "$url" | head -3

say "lockstep tail --once --format text $url"
"$bin" tail --once --format text --color always "$url"

say "lockstep tail --format text $url   (following; a change and a deletion arrive)"
"$bin" tail --format text --color always --since 1700000200 "$url" &
pids+=($!)
sleep 1
echo '{"id":103,"updated_at":1700000300,"deleted_at":null,"name":"web-03","ip":"10.0.0.33","port":9003,"tags":["web"]}' >>"$work/servers.jsonl"
sleep 0.5
echo '{"id":107,"updated_at":1700000301,"deleted_at":1700000301}' >>"$work/servers.jsonl"
sleep 1

say "lockstep sync $url --out servers.jsonl, then dump it"
"$bin" sync "$url" --out "$work/replica.jsonl"
"$bin" dump --format table --color always "$work/replica.jsonl" | head -6
echo "..."
say "lockstep dump $url | diff - replica.jsonl   (the replica equals the endpoint)"
"$bin" dump "$url" | diff - "$work/replica.jsonl" && echo "identical: $(wc -l <"$work/replica.jsonl") records"
