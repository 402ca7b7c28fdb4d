#!/usr/bin/env bash
# make bench: lockstep against curl and jq on the same 1,000,000 records
# (~100 bytes each, distinct keys), served by lockstep serve on loopback,
# all in one run so the ratios hold on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${LOCKSTEP_BENCH_RECORDS:-1000000}
bin=./lockstep
dir=testdata/bench
mkdir -p "$dir"
need() {
	command -v "$1" >/dev/null && return
	echo "installing $2 (needed by make bench)"
	{ apt-get update -qq && apt-get install -y -qq "$2"; } >/dev/null
}
need jq jq
[ -x /usr/bin/time ] || need /usr/bin/time time

data="$dir/records-$N.jsonl"
if [ ! -s "$data" ]; then
	awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++)
		printf "{\"id\":%d,\"updated_at\":%.0f,\"deleted_at\":null,\"name\":\"host-%07d\",\"ip\":\"10.%d.%d.%d\",\"port\":%d}\n",
			i, 1700000000000 + i, i, int(i / 65536) % 256, int(i / 256) % 256, i % 256, 1024 + i % 50000 }' >"$data"
fi
bytes=$(wc -c <"$data")

log=$(mktemp)
"$bin" serve --finite --addr 127.0.0.1:0 "$data" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 300); do grep -q serving "$log" && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' "$log")"

# measure NAME CMD: wall seconds and peak RSS of CMD, best of 3.
results=()
measure() {
	local name=$1 best="" rss=""
	shift
	for _ in 1 2 3; do
		out=$(/usr/bin/time -f '%e %M' bash -c "$*" 2>&1 >/dev/null | tail -1)
		set -- "$@"
		local s=${out% *} m=${out#* }
		if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s rss=$m; fi
	done
	results+=("$name	$best	$rss")
	printf '%-44s %7.2f s  %8d KB peak\n' "$name" "$best" "$rss"
}

echo "$N records, $bytes bytes, from $url"
measure "curl > /dev/null" "curl -s $url/0 > /dev/null"
measure "curl | jq -c . > /dev/null" "curl -s $url/0 | jq -c . > /dev/null"
measure "lockstep tail --once > /dev/null" "$bin tail --once $url/ > /dev/null"
rm -f "$dir"/replica.jsonl*
measure "lockstep sync (from 0, to a snapshot)" "rm -f $dir/replica.jsonl*; $bin sync $url/ --out $dir/replica.jsonl 2>/dev/null"
measure "lockstep sync (restart, nothing new)" "$bin sync $url/ --out $dir/replica.jsonl 2>/dev/null"

awk -v n="$N" -v bytes="$bytes" -F'\t' '
	{ t[NR] = $2; m[NR] = $3 }
	END {
		printf "\ntail: %.0f records/s, %.1fx faster than curl | jq, %.0f bytes of memory per key\n", n / t[3], t[2] / t[3], m[3] * 1024 / n
		printf "sync: %.2fx the time of tail --once, peak memory %.2fx the snapshot size\n", t[4] / t[3], m[4] * 1024 / bytes
		printf "sync restart with nothing new: %.2f s\n", t[5]
	}' < <(printf '%s\n' "${results[@]}")
