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
# show prints a command as it can be copied; run shows one, its arguments
# quoted as a shell needs them, and runs it.
show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
# quote prints its arguments as they must be typed: bare when safe, else
# in double quotes, else in single quotes.
quote() {
	local a out=()
	for a in "$@"; do
		if [[ $a =~ ^[[:alnum:]_./:=@,+%-]+$ ]]; then
			out+=("$a")
		elif [[ $a != *[\$\`\"\\!]* ]]; then
			out+=("\"$a\"")
		else
			out+=("'${a//\'/\'\\\'\'}'")
		fi
	done
	printf '%s' "${out[*]}"
}
run() { show "$(quote "$@")"; "$@"; }

cp testdata/servers.jsonl "$work/servers.jsonl"
"$bin" serve --addr 127.0.0.1:0 "$work/servers.jsonl" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 50); do grep -q 'serving' "$work/serve.log" && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' "$work/serve.log")servers/"
say "$bin serve --addr 127.0.0.1:0 $work/servers.jsonl   (a copy of testdata/servers.jsonl; it chose $url)"

say "JSON lines, as | jq sees them"
show "$bin tail --once $url | head -3"
"$bin" tail --once "$url" | head -3

say "the terminal format"
run "$bin" tail --once --format text --color always "$url"

say "following; a change and a deletion arrive"
show "$bin tail --format text --color always --since 1700000200 $url &"
"$bin" tail --format text --color always --since 1700000200 "$url" &
pids+=($!)
sleep 1
change='{"id":103,"updated_at":1700000300,"deleted_at":null,"name":"web-03","ip":"10.0.0.33","port":9003,"tags":["web"]}'
show "echo '$change' >>$work/servers.jsonl"
echo "$change" >>"$work/servers.jsonl"
sleep 0.5
deletion='{"id":107,"updated_at":1700000301,"deleted_at":1700000301}'
show "echo '$deletion' >>$work/servers.jsonl"
echo "$deletion" >>"$work/servers.jsonl"
sleep 1

say "a replica on disk, then a look at it"
run "$bin" sync "$url" --out "$work/replica.jsonl"
show "$bin dump --format table --color always $work/replica.jsonl | head -6"
"$bin" dump --format table --color always "$work/replica.jsonl" | head -6
echo "..."
show "$bin dump --fields id,ip,port --format csv $work/replica.jsonl | head -4"
"$bin" dump --fields id,ip,port --format csv "$work/replica.jsonl" | head -4
say "the replica equals the endpoint"
show "$bin dump $url | diff - $work/replica.jsonl"
"$bin" dump "$url" | diff - "$work/replica.jsonl" && echo "identical: $(wc -l <"$work/replica.jsonl") records"

say "the same replica in SQLite, queried with SQL"
run "$bin" sync "$url" --out "sqlite:$work/servers.db"
show "$bin dump sqlite:$work/servers.db | diff - $work/replica.jsonl"
"$bin" dump "sqlite:$work/servers.db" | diff - "$work/replica.jsonl" && echo "identical: $(wc -l <"$work/replica.jsonl") records"
if command -v sqlite3 >/dev/null; then
	run sqlite3 "$work/servers.db" "select key, record->>'ip' from servers where record->>'port' > 9000"
fi
