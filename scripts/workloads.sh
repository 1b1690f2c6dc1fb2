#!/usr/bin/env bash
# Build the native workload tools (noop, storm, flood) into OUTDIR.
#
#   scripts/workloads.sh [OUTDIR] [CC]
#
# OUTDIR defaults to out/workloads under the repo root; CC defaults to cc and
# may carry flags or name a cross compiler ("aarch64-linux-gnu-gcc",
# "clang --target=aarch64-linux-gnu").  All three are fully static: the agent
# embeds them and runs them from a memfd, where there is no loader to use.
# Silent on success apart from one line of sizes; fails loudly otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../out/workloads}"
read -r -a cc <<<"${2:-${CC:-cc}}"	# word-split on purpose: CC may have flags

common=(-std=c11 -Wall -Wextra -Werror -O2 -s -static -Wl,--build-id=none)
# noop: no libc at all; noseparate-code stops ld padding the one segment to a
# page boundary (4.4 KB -> 0.5 KB).
noop_flags=(-nostdlib -nostartfiles -fno-asynchronous-unwind-tables
	-Wl,-z,noseparate-code)
# storm, flood: static glibc; most of their ~0.7 MB is glibc's own start-up.
libc_flags=(-ffunction-sections -fdata-sections -Wl,--gc-sections)

mkdir -p "$out"
build() {	# name, extra flags...
	local name="$1"; shift
	local tmp="$out/.$name.tmp.$$"
	# Build beside the target and rename, so a concurrent reader never sees
	# a half-written binary.
	if ! "${cc[@]}" "${common[@]}" "$@" -o "$tmp" "$here/../workloads/$name.c"; then
		rm -f "$tmp"
		echo "scripts/workloads.sh: building $name with '${cc[*]}' failed" >&2
		exit 1
	fi
	mv -f "$tmp" "$out/$name"
}
build noop "${noop_flags[@]}"
build storm "${libc_flags[@]}"
build flood "${libc_flags[@]}"
# trigger: test-only (not embedded), also static so it runs unchanged in the kernel matrix VMs.
build trigger "${libc_flags[@]}"
build io-trigger "${libc_flags[@]}"
# iostorm: bench-only (benchmarks/io.ts), not embedded.
build iostorm "${libc_flags[@]}"

sizes=""
for n in noop storm flood trigger io-trigger iostorm; do sizes+=" $n=$(stat -c %s "$out/$n")"; done
echo "tools:$sizes bytes -> $out"
