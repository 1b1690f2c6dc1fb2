#!/usr/bin/env bash
# Quick self-check of the native workload tools: build into a temp dir, run
# each once, and check that the one-line JSON outputs are well formed.
#   scripts/workloads-selftest.sh [CC]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
fail() { echo "workloads-selftest: FAIL: $*" >&2; exit 1; }

"$here/workloads.sh" "$out" "${1:-${CC:-cc}}" >/dev/null

# Static means no PT_INTERP: they must run from a memfd with no loader.
if command -v readelf >/dev/null; then
	for n in noop storm flood iostorm; do
		readelf -lW "$out/$n" | grep -q INTERP && fail "$n is not static"
	done
fi
size=$(stat -c %s "$out/noop")
((size <= 1024)) || fail "noop is $size bytes, want <= 1024"

num='[0-9]+'
real='[0-9]+(\.[0-9]+)?'
# Exact shape (so consumers can rely on it), then a real JSON parse if we can.
check() {	# name, line, regex
	[[ "$2" =~ ^$3$ ]] || fail "$1 printed: $2"
	if command -v python3 >/dev/null; then
		python3 -c 'import json,sys; json.loads(sys.argv[1])' "$2" ||
			fail "$1 output is not JSON: $2"
	fi
}

line=$("$out/storm" --execs 2000 --workers 2 -- "$out/noop") ||
	fail "storm exited $?"
check storm "$line" "\{\"execs\":2000,\"workers\":2,\"failed\":0,\"elapsed_ns\":$num,\"rate_per_s\":$real\}"
echo "storm (path):  $line"

# The agent hands storm its memfd as /proc/<pid>/fd/N: exercise that route.
exec {fd}<"$out/noop"
line=$("$out/storm" --execs 200 --workers 2 --quiet -- "/proc/$BASHPID/fd/$fd" noop a b) ||
	fail "storm via /proc/$BASHPID/fd/$fd exited $?"
exec {fd}<&-
check storm "$line" "\{\"execs\":200,\"workers\":2,\"failed\":0,\"elapsed_ns\":$num,\"rate_per_s\":$real\}"

# Failures must be counted and turned into a non-zero exit.
if line=$("$out/storm" --execs 4 --workers 2 -- /bin/false 2>/dev/null); then
	fail "storm of /bin/false exited 0"
fi
check storm "$line" "\{\"execs\":4,\"workers\":2,\"failed\":4,\"elapsed_ns\":$num,\"rate_per_s\":$real\}"

line=$("$out/flood" --count 1000000) || fail "flood exited $?"
check flood "$line" "\{\"count\":1000000,\"syscall_nr\":$num,\"elapsed_ns\":$num,\"rate_per_s\":$real\}"
echo "flood (max):   $line"

line=$(echo go | "$out/flood" --count 2000 --rate 20000 --wait-stdin) ||
	fail "paced flood exited $?"
check flood "$line" "\{\"count\":2000,\"syscall_nr\":$num,\"elapsed_ns\":$num,\"rate_per_s\":$real\}"
ns=$(sed -E 's/.*"elapsed_ns":([0-9]+).*/\1/' <<<"$line")
# 2000 calls at 20000/s is 100 ms; pacing must not run fast.
((ns >= 99000000)) || fail "paced flood took ${ns} ns, want >= 100 ms"

# iostorm: every command once, small; its own listener for connect.
iodir="$out/iostorm.d"
mkdir "$iodir"
shape="\{\"ops\":200,\"workers\":2,\"failed\":0,\"elapsed_ns\":$num,\"rate_per_s\":$real\}"
for c in "connect 127.0.0.1 0" "create $iodir" "rename $iodir" "link $iodir" "bind 127.0.0.1" "dns 127.0.0.1"; do
	read -r -a a <<<"$c"
	line=$("$out/iostorm" "${a[0]}" --ops 200 --workers 2 "${a[@]:1}") || fail "iostorm $c exited $?"
	check iostorm "$line" "$shape"
done
[[ -z "$(ls -A "$iodir")" ]] || fail "iostorm left files in its directory: $(ls -A "$iodir")"
line=$("$out/iostorm" create --ops 200 --workers 2 --rate 4000 "$iodir") || fail "paced iostorm exited $?"
ns=$(sed -E 's/.*"elapsed_ns":([0-9]+).*/\1/' <<<"$line")
((ns >= 49000000)) || fail "paced iostorm took ${ns} ns, want >= 50 ms"
echo "iostorm:       $line"

echo "workloads-selftest: OK"
