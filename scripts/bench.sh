#!/usr/bin/env bash
# make bench: lockstep against curl and jq on the same 1,000,000 records
# (~113 bytes each, distinct keys), served by lockstep serve on loopback,
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

[ "$N" -gt 1000 ] || { echo "make bench: LOCKSTEP_BENCH_RECORDS must be above 1000 (a run of 1,000 is the baseline)" >&2; exit 2; }

# records FILE MUL: N records on line i, update_at rising, with key i when
# MUL is 1 and i * MUL mod N + 1 otherwise (a permutation of 1..N when MUL
# is a prime that does not divide N, as 7919 divides no N of the form
# 2^a 5^b).
records() {
	[ -s "$1" ] && return
	awk -v n="$N" -v mul="$2" 'BEGIN { for (i = 1; i <= n; i++) { k = mul == 1 ? i : (i * mul) % n + 1
		printf "{\"id\":%d,\"updated_at\":%.0f,\"deleted_at\":null,\"name\":\"host-%07d\",\"ip\":\"10.%d.%d.%d\",\"port\":%d}\n",
			k, 1700000000000 + i, k, int(k / 65536) % 256, int(k / 256) % 256, k % 256, 1024 + k % 50000 } }' >"$1"
}

# serve FILE [FLAG...]: lockstep serve on FILE, on loopback, stopped on
# exit; sets srv (its pid) and srv_url.
logs=$(mktemp -d)
servers=()
pgserver=""
cleanup() {
	kill "${servers[@]}" 2>/dev/null || true
	if [ -n "$pgserver" ]; then
		exec 9>&-
		wait "$pgserver" 2>/dev/null || true
	fi
	rm -rf "$logs"
}
trap cleanup EXIT
serve() {
	local log
	log="$logs/$(basename "$1").log"
	"$bin" serve "${@:2}" --addr 127.0.0.1:0 "$1" 2>"$log" &
	srv=$!
	servers+=("$srv")
	for _ in $(seq 300); do grep -qs serving "$log" && break; sleep 0.1; done
	srv_url="$(grep -o 'http://[^ ]*' "$log")"
}

# stop PID: stop a server before the end, when its data is done with.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

data="$dir/records-$N.jsonl"
records "$data" 1
bytes=$(wc -c <"$data")
serve "$data" --finite
url=$srv_url

# settle runs PREP (removing the last run's output, say), then flushes the
# file system, so that writing back and discarding the last run's 113 MB
# is not done during the next timed one. (A sync into a new file each
# round, removed at the end, is no better: on this virtual machine, page
# cache the guest has not used before costs several times more to fill.)
settle() {
	bash -c "${1:-true}"
	sync
}

# measure NAME CMD [PREP]: wall seconds and peak RSS of CMD, best of 3,
# each run after settle PREP.
results=()
measure() {
	local name=$1 cmd=$2 prep=${3:-true} best="" rss="" cpu=""
	for _ in 1 2 3; do
		settle "$prep"
		out=$(/usr/bin/time -f '%e %M %U %S' bash -c "$cmd" 2>&1 >/dev/null | tail -1)
		read -r s m u k <<<"$out"
		if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s rss=$m cpu=$(awk "BEGIN{print $u + $k}"); fi
	done
	results+=("$name	$best	$rss	$cpu")
	printf '%-44s %7.2f s  %6.2f s cpu  %8d KB peak\n' "$name" "$best" "$cpu" "$rss"
}

go build -o "$dir/parsefloor" ./internal/parsefloor
echo "$N records, $bytes bytes, from $url"
measure "curl > /dev/null" "curl -s $url/0 > /dev/null"
measure "curl | jq -c . > /dev/null" "curl -s $url/0 | jq -c . > /dev/null"
rm -f "$dir"/replica.jsonl*
"$bin" sync "$url/" --out "$dir/replica.jsonl" 2>/dev/null
measure "lockstep sync (restart, nothing new)" "$bin sync $url/ --out $dir/replica.jsonl 2>/dev/null"

# The fixed cost of a run, which no table size changes (the binary, the
# runtime, the buffers): tail and sync of 1,000 of the same records. Memory
# per key and per snapshot byte is what the other 999,000 add to it.
small="$dir/records-1000.jsonl"
head -1000 "$data" >"$small"
smallbytes=$(wc -c <"$small")
serve "$small" --finite
smallserver=$srv smallurl=$srv_url
base_tail=$(for _ in 1 2 3; do /usr/bin/time -f '%M' "$bin" tail --once "$smallurl/" 2>&1 >/dev/null | tail -1; done | sort -n | head -1)
base_sync=$(for _ in 1 2 3; do rm -f "$dir"/small.jsonl*; /usr/bin/time -f '%M' "$bin" sync "$smallurl/" --out "$dir/small.jsonl" 2>&1 >/dev/null | tail -1; done | sort -n | head -1)
rm -f "$dir"/small.jsonl*
stop "$smallserver"

# The floor, tail and sync in alternated rounds: the machine's speed drifts
# (it is shared), so each ratio is taken within a round and the median of
# the rounds reported.
ROUNDS=${LOCKSTEP_BENCH_ROUNDS:-7}
rounds=$(mktemp)
for _ in $(seq "$ROUNDS"); do
	for name in floor tail sync; do
		case $name in
		floor) cmd="$dir/parsefloor $url/0" ;;
		tail) cmd="$bin tail --once $url/ > /dev/null" ;;
		sync) cmd="$bin sync $url/ --out $dir/replica.jsonl 2>/dev/null" ;;
		esac
		settle "rm -f $dir/replica.jsonl*"
		echo "$name $(/usr/bin/time -f '%e %M %U %S' bash -c "$cmd" 2>&1 >/dev/null | tail -1)" >>"$rounds"
	done
done
awk -v n="$N" -v bytes="$bytes" -v rounds="$ROUNDS" -v jq="${results[1]}" \
	-v base_tail="$base_tail" -v base_sync="$base_sync" -v smallbytes="$smallbytes" '
	function median(a, k,   i, j, t) {
		for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
	}
	{ r = int((NR - 1) / 3) + 1; t[$1, r] = $2; m[$1, r] = $3; c[$1, r] = $4 + $5 }
	END {
		split(jq, j, "\t")
		for (r = 1; r <= rounds; r++) {
			ft[r] = t["floor", r]; tt[r] = t["tail", r]; st[r] = t["sync", r]
			fc[r] = c["floor", r]; tc[r] = c["tail", r]; sc[r] = c["sync", r]
			tm[r] = m["tail", r]; sm[r] = m["sync", r]
			r1[r] = t["tail", r] / t["floor", r]; r2[r] = t["sync", r] / t["tail", r]; r3[r] = c["tail", r] / c["floor", r]
		}
		printf "\nmedians of %d alternated rounds:\n", rounds
		printf "%-44s %7.2f s  %6.2f s cpu  %8d KB peak\n", "parse only (fastjson, the three fields)", median(ft, rounds), median(fc, rounds), m["floor", 1]
		printf "%-44s %7.2f s  %6.2f s cpu  %8d KB peak\n", "lockstep tail --once > /dev/null", median(tt, rounds), median(tc, rounds), median(tm, rounds)
		printf "%-44s %7.2f s  %6.2f s cpu  %8d KB peak\n", "lockstep sync (from 0, to a snapshot)", median(st, rounds), median(sc, rounds), median(sm, rounds)
		tail = median(tt, rounds)
		printf "\ntail --once: %.2fx the time of parsing alone (fastjson), %.2fx its cpu; %.0f records/s, %.1fx faster than curl | jq\n", median(r1, rounds), median(r3, rounds), n / tail, j[2] / tail
		printf "tail: %.0f bytes of memory per key held, beyond the %d KB a run of 1,000 records takes (%.0f bytes a key all told)\n",
			(median(tm, rounds) - base_tail) * 1024 / (n - 1000), base_tail, median(tm, rounds) * 1024 / n
		printf "sync: %.2fx the time of tail --once; peak memory %.2fx the snapshot size beyond the %d KB a run of 1,000 records takes (%.2fx all told)\n",
			median(r2, rounds), (median(sm, rounds) - base_sync) * 1024 / (bytes - smallbytes), base_sync, median(sm, rounds) * 1024 / bytes
	}' "$rounds"
rm -f "$rounds"

# The same records with their keys in random order (the stream still in
# order of updated_at): a table whose keys do not grow with time needs its
# index from the first record, and a sort before a snapshot is written.
shuffled="$dir/shuffled-$N.jsonl"
records "$shuffled" 7919
serve "$shuffled" --finite
shufserver=$srv shufurl=$srv_url
results=()
echo "keys in random order, best of 3:"
measure "parse only (fastjson, the three fields)" "$dir/parsefloor $shufurl/0"
measure "lockstep tail --once > /dev/null" "$bin tail --once $shufurl/ > /dev/null"
measure "lockstep sync (from 0, to a snapshot)" "$bin sync $shufurl/ --out $dir/replica.jsonl 2>/dev/null" "rm -f $dir/replica.jsonl*"
awk -v n="$N" -v bytes="$bytes" -v base_tail="$base_tail" -v base_sync="$base_sync" -v smallbytes="$smallbytes" -F'\t' '{ t[NR] = $2; m[NR] = $3 }
	END { printf "tail: %.2fx the floor, %.0f bytes a key beyond a small run (%.0f all told); sync: %.2fx tail, peak memory %.2fx the snapshot beyond a small run (%.2fx all told)\n\n",
		t[2] / t[1], (m[2] - base_tail) * 1024 / (n - 1000), m[2] * 1024 / n, t[3] / t[2], (m[3] - base_sync) * 1024 / (bytes - smallbytes), m[3] * 1024 / bytes }' < <(printf '%s\n' "${results[@]}")
stop "$shufserver"

# Latency, endpoint write -> tail stdout, against the transport's own floor
# (a plain HTTP client reading the same endless response), 2,000 changes.
go test -run '^$' -bench 'TailLatency' -benchtime 1x . | awk '
	/TailLatency\/transport/ { for (i = 1; i <= NF; i++) if ($i == "p99-ms") tp = $(i-1) }
	/TailLatency\/tail/ { for (i = 1; i <= NF; i++) { if ($i == "p99-ms") lp = $(i-1); if ($i == "p50-ms") l50 = $(i-1) } }
	END { printf "latency, endpoint write -> tail stdout: p50 %.2f ms, p99 %.2f ms (%.2fx the transport floor p99 %.2f ms)\n\n", l50, lp, lp / tp, tp }'

# sync --follow on the 1,000,000-record table while it receives 1,000
# changes a second for 20 s: the share of time spent writing snapshots.
live="$dir/live.jsonl"
cp "$data" "$live"
serve "$live"
liveurl=$srv_url
rm -f "$dir"/follow.jsonl*
"$bin" sync --follow "$liveurl/" --out "$dir/follow.jsonl" 2>"$dir/follow.log" &
syncer=$!
for _ in $(seq 600); do [ -s "$dir/follow.jsonl.checkpoint" ] && break; sleep 0.1; done
awk -v n="$N" 'BEGIN { srand(1); t = 1700000000000 + n
	for (s = 0; s < 200; s++) {
		for (i = 0; i < 100; i++) { t++; k = int(rand() * n) + 1
			printf "{\"id\":%d,\"updated_at\":%.0f,\"deleted_at\":null,\"name\":\"host-%07d\",\"ip\":\"10.9.9.9\",\"port\":%d}\n", k, t, k, s }
		fflush(); system("sleep 0.1") } }' >>"$live"
sleep 1
kill -TERM $syncer
wait $syncer || true
echo "sync --follow, 1,000 changes/s for 20 s on $N records: $(tail -1 "$dir/follow.log")"

# Replicas in databases (issue 9), beside the file store on the same data:
# a load from empty, then a run that applies 100 changes to the loaded table.
go build -o "$dir/pgserve" ./internal/pgtest/pgserve
pgdsn_file="$logs/pgdsn"
mkfifo "$dir/pgserve.in" 2>/dev/null || true
"$dir/pgserve" <"$dir/pgserve.in" >"$pgdsn_file" 2>/dev/null &
pgserver=$!
exec 9>"$dir/pgserve.in"
for _ in $(seq 300); do [ -s "$pgdsn_file" ] && break; sleep 0.1; done
pgdsn=$(head -1 "$pgdsn_file")
results=()
echo
measure "sync to a file (from 0)" "$bin sync $url/ --out $dir/replica.jsonl 2>/dev/null" "rm -f $dir/replica.jsonl*"
measure "sync --out sqlite: (from 0)" "$bin sync $url/ --out sqlite:$dir/replica.db 2>/dev/null" "rm -f $dir/replica.db*"
measure "sync --out postgres:// (from 0)" "$bin sync $url/ --out \"$pgdsn&table=load_\$RANDOM\$RANDOM\" 2>/dev/null"
awk -v n="$N" -F'\t' '{ t[NR] = $2; m[NR] = $3 }
	END { printf "load: file %.0f, SQLite %.0f, PostgreSQL %.0f records/s (%.2fx and %.2fx the file'"'"'s time); peak memory %d, %d, %d KB\n",
		n / t[1], n / t[2], n / t[3], t[2] / t[1], t[3] / t[1], m[1], m[2], m[3] }' < <(printf '%s\n' "${results[@]}")

inc="$dir/incremental.jsonl"
cp "$data" "$inc"
serve "$inc" --finite
incurl=$srv_url
rm -f "$dir"/inc.jsonl* "$dir"/inc.db*
"$bin" sync "$incurl/" --out "$dir/inc.jsonl" 2>/dev/null
"$bin" sync "$incurl/" --out "sqlite:$dir/inc.db" 2>/dev/null
"$bin" sync "$incurl/" --out "$pgdsn&table=inc" 2>/dev/null
awk -v n="$N" 'BEGIN { t = 1700000000000 + n
	for (i = 1; i <= 100; i++) { t++; k = i * 9973 % n + 1
		printf "{\"id\":%d,\"updated_at\":%.0f,\"deleted_at\":null,\"name\":\"host-%07d\",\"ip\":\"10.8.8.8\",\"port\":1}\n", k, t, k } }' >>"$inc"
sleep 1
results=()
for out in "$dir/inc.jsonl" "sqlite:$dir/inc.db" "$pgdsn&table=inc"; do
	# Each measured run applies the same 100 changes: the later runs of
	# best-of-3 find them applied, so measure the first alone.
	settle
	/usr/bin/time -o "$dir/inc.time" -f '%e' "$bin" sync "$incurl/" --out "$out" >/dev/null 2>&1
	results+=("$(tail -1 "$dir/inc.time")")
done
printf '100 changes to %s records: file %.3f s, SQLite %.3f s, PostgreSQL %.3f s (including connecting)\n' "$N" "${results[@]}"
