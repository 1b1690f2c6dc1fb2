#!/usr/bin/env bash
# Build one self-contained libbpf.so for embedding in the release executable.
#
# Why: the agent must run on hosts with no libbpf/libelf/zlib installed, and
# it loads native code from a sealed memfd rather than extracting it to disk
# (it runs as root; $TMPDIR may be noexec or attacker-writable). That needs a
# single .so whose only dependency is libc, so libelf (elfutils) and zlib are
# compiled -fPIC from Debian's source packages and linked in privately.
# Debian's own libbpf.a/libelf.a are not PIC and cannot go into a .so.
#
# Why these choices:
#  - Sources come from Debian (apt-get source, pinned versions, .dsc hashes
#    checked) because only Debian's archive and npm are reachable, and it
#    keeps us on the exact code Debian ships security fixes for.
#  - libbpf's own libbpf.map is the version script, so only libbpf's API is
#    exported: the bundled libelf/zlib can never interpose on (or be
#    interposed by) the host process's copies, e.g. Bun's built-in zlib.
#  - scripts/glibc-compat.{h,c} keep the glibc symbol-version floor low (the
#    build fails if it rises above GLIBC_2.28), since the build host's
#    glibc 2.36 headers would otherwise demand fstat@2.33.
#  - Output is cached by (arch, pinned versions, hash of this script and its
#    helpers), so a warm run is a copy; sources are cached separately so a
#    rebuild after editing this script needs no network.
#
# Usage: bash scripts/libbpf.sh [x64|arm64]   (root; installs build deps)
# Output: out/native/<arch>/libbpf.so and out/native/<arch>/libbpf.version
# Cache:  ${DUAL_SLOT_CACHE:-/var/cache/dual-slot}/native/<arch>-<hash>/
set -euo pipefail

started=$(date +%s.%N)
arch=${1:-x64}

# The source package has no epoch (binary libbpf-dev is 1:1.1.2-0+deb12u1).
readonly LIBBPF_VER=1.1.2-0+deb12u1
readonly ELFUTILS_VER=0.188-2.1
readonly ZLIB_VER=1:1.2.13.dfsg-1
readonly LIBBPF_DSC_SHA256=96f81dad2d5f1505ac8c3630249c77f7fcb9ab2f429c4386b2eee2149b7a8c4b
readonly ELFUTILS_DSC_SHA256=2e73c5bfe9d0ddbf837742d638c43b049590ae1de8f6e3d9c2740c28e2550760
readonly ZLIB_DSC_SHA256=3fa1e6b2fc525062aa88207dda52fed8e045373c809d362fe8a2bfbf7cf515a8
readonly MAX_GLIBC=2.28

case $arch in
x64) triple=x86_64-linux-gnu cross= ;;
arm64) triple=aarch64-linux-gnu cross=aarch64-linux-gnu- ;;
*)
	echo "usage: $0 [x64|arm64]" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
dest=$repo/out/native/$arch
cache_root=${DUAL_SLOT_CACHE:-/var/cache/dual-slot}/native
# Compiler flags below are word-split on purpose.
if [[ $here$cache_root == *[[:space:]]* ]]; then
	echo "scripts/libbpf.sh: paths with whitespace are not supported: $here $cache_root" >&2
	exit 2
fi

key=$({
	printf '%s\n' "$arch" "$LIBBPF_VER" "$ELFUTILS_VER" "$ZLIB_VER"
	cat "$here/libbpf.sh" "$here/glibc-compat.h" "$here/glibc-compat.c"
} | sha256sum | cut -c1-16)
cached=$cache_root/$arch-$key

log() { printf '[build-libbpf %s +%s] %s\n' "$arch" "$(elapsed)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
elapsed() { awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2fs", b - a }'; }

# Copy via a temp name + rename so a concurrent `bun build` never embeds a
# half-written library.
publish() {
	mkdir -p "$dest"
	cp "$cached/libbpf.so" "$dest/.libbpf.so.$$"
	cp "$cached/libbpf.version" "$dest/.libbpf.version.$$"
	mv -f "$dest/.libbpf.so.$$" "$dest/libbpf.so"
	mv -f "$dest/.libbpf.version.$$" "$dest/libbpf.version"
	log "$1: $dest/libbpf.so (libbpf $(cat "$dest/libbpf.version"), $(stat -c %s "$dest/libbpf.so") bytes) in $(elapsed)"
}

if [[ -f $cached/libbpf.so && -f $cached/libbpf.version ]]; then
	publish "cached"
	exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
# Another run may have finished the same build while we waited for the lock.
if [[ -f $cached/libbpf.so && -f $cached/libbpf.version ]]; then
	publish "cached"
	exit 0
fi
# Holding the lock, no other build uses a work dir: any left are from killed runs.
rm -rf "$cache_root"/work.*

# shellcheck source=/dev/null
. /etc/os-release
[[ ${VERSION_CODENAME:-} == bookworm ]] ||
	log "warning: pins are for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}"

export DEBIAN_FRONTEND=noninteractive
apt_updated=
need_root() { [[ $(id -u) -eq 0 ]] || die "$1 needs root: run as root (CI does) or warm the cache"; }
apt_update() {
	[[ -n $apt_updated ]] && return 0
	need_root "apt-get update"
	log "apt-get update"
	apt-get update -qq >&2
	apt_updated=1
}

# --- build tools -----------------------------------------------------------
need=()
command -v "${cross}gcc" >/dev/null || need+=("gcc${cross:+-${triple}}")
[[ -z $cross ]] || dpkg -s "libc6-dev-arm64-cross" >/dev/null 2>&1 || need+=(libc6-dev-arm64-cross)
[[ -n $cross ]] || dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
command -v make >/dev/null || need+=(make)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v xz >/dev/null || need+=(xz-utils)
command -v bzip2 >/dev/null || need+=(bzip2)
command -v readelf >/dev/null || need+=(binutils)
if ((${#need[@]})); then
	apt_update
	log "apt-get install ${need[*]}"
	apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
		die "could not install ${need[*]}"
fi

# --- sources ---------------------------------------------------------------
src_cache=$cache_root/src
mkdir -p "$src_cache"

have_src_version() { # pkg version
	# Capture first: `grep -q` in a pipe would SIGPIPE apt-cache under pipefail.
	local versions
	versions=$(apt-cache showsrc --only-source "$1" 2>/dev/null | sed -n 's/^Version: //p')
	grep -qxF -e "$2" -e "${2#*:}" <<<"$versions"
}

# Mirror this release's enabled `deb` entries as `deb-src`, in both the
# deb822 and the one-line formats, so `apt-get source` can see the pins.
add_deb_src() {
	local out822=/etc/apt/sources.list.d/dual-slot-src.sources
	local outlist=/etc/apt/sources.list.d/dual-slot-src.list
	[[ -e $out822 || -e $outlist ]] && return 0
	need_root "adding deb-src entries"
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -e $f ]] || continue
		awk -v codename="$VERSION_CODENAME" '
			BEGIN { RS = ""; ORS = "\n\n" }
			{
				n = split($0, lines, "\n"); types = 0; suites = 0; enabled = 1
				for (i = 1; i <= n; i++) {
					if (lines[i] ~ /^Types:/ && lines[i] ~ /[ \t]deb([ \t]|$)/) types = 1
					if (lines[i] ~ /^Suites:/ && lines[i] ~ ("[ \t]" codename)) suites = 1
					if (lines[i] ~ /^Enabled:[ \t]*no/) enabled = 0
				}
				if (!(types && suites && enabled)) next
				out = ""
				for (i = 1; i <= n; i++) {
					if (lines[i] ~ /^#/) continue
					out = out (lines[i] ~ /^Types:/ ? "Types: deb-src" : lines[i]) "\n"
				}
				printf "%s\n", out
			}' "$f"
	done >"$out822.tmp"
	if [[ -s $out822.tmp ]]; then
		mv "$out822.tmp" "$out822"
	else
		rm -f "$out822.tmp"
	fi
	if [[ -f /etc/apt/sources.list ]]; then
		sed -n -E "s/^[[:space:]]*deb([[:space:]]+[^#]*[[:space:]]$VERSION_CODENAME)/deb-src\1/p" \
			/etc/apt/sources.list >"$outlist.tmp"
		if [[ -s $outlist.tmp ]]; then mv "$outlist.tmp" "$outlist"; else rm -f "$outlist.tmp"; fi
	fi
	[[ -e $out822 || -e $outlist ]] || die "found no enabled $VERSION_CODENAME 'deb' source entries to mirror as deb-src"
	local added=()
	for f in "$out822" "$outlist"; do [[ -e $f ]] && added+=("$f"); done
	log "added deb-src entries: ${added[*]}"
}

fetch_src() { # pkg version dsc-sha256 -> REPLY=path of the .dsc
	local pkg=$1 ver=$2 sha=$3
	local upver=${ver#*:}
	local dir=$src_cache/$pkg-$upver
	local dsc=$dir/${pkg}_${upver}.dsc
	if [[ ! -f $dsc ]]; then
		if ! have_src_version "$pkg" "$ver"; then
			add_deb_src
			apt_updated= # the deb-src indexes may be new or stale
			apt_update
			have_src_version "$pkg" "$ver" || die "source $pkg=$ver is not in the apt indexes; available: $(
				apt-cache showsrc --only-source "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -u | tr '\n' ' '
			)(Debian may have superseded the pin: update it in this script)"
		fi
		log "apt-get source --download-only $pkg=$ver"
		rm -rf "$dir.tmp"
		mkdir -p "$dir.tmp"
		# Let apt's unprivileged _apt user write here so the download stays sandboxed.
		id _apt >/dev/null 2>&1 && chown _apt "$dir.tmp"
		(cd "$dir.tmp" && apt-get source -qq --download-only "$pkg=$ver" >&2) ||
			die "apt-get source $pkg=$ver failed"
		rm -rf "$dir"
		mv "$dir.tmp" "$dir"
	fi
	echo "$sha  $dsc" | sha256sum -c --quiet - >&2 || die "$dsc does not match the pinned sha256"
	REPLY=$dsc
}

work=$(mktemp -d "$cache_root/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Results come back in REPLY, not via $(...), so that die() ends the script.
extract() { # dsc -> REPLY=source dir; dpkg-source checks tarball hashes against the .dsc
	local d
	d=$work/src/$(basename "$1" .dsc)
	mkdir -p "$work/src"
	dpkg-source -q -x "$1" "$d" >/dev/null 2>"$work/dpkg-source.log" ||
		{ cat "$work/dpkg-source.log" >&2; die "dpkg-source -x $1 failed"; }
	REPLY=$d
}

# (Separate statements: set -e is ignored inside functions called from `&&`.)
fetch_src zlib "$ZLIB_VER" "$ZLIB_DSC_SHA256"
extract "$REPLY"
zlib_src=$REPLY
fetch_src elfutils "$ELFUTILS_VER" "$ELFUTILS_DSC_SHA256"
extract "$REPLY"
elfutils_src=$REPLY
fetch_src libbpf "$LIBBPF_VER" "$LIBBPF_DSC_SHA256"
extract "$REPLY"
libbpf_src=$REPLY

# --- compile ---------------------------------------------------------------
cc=${cross}gcc
jobs=$(nproc)
stage=$work/stage
mkdir -p "$stage/include" "$stage/lib"
# -ffile-prefix-map: assert() strings must not leak the random work path, so
# identical inputs give identical bytes.
cflags=(-O2 -fPIC -ffunction-sections -fdata-sections "-ffile-prefix-map=$work/src/="
	-include "$here/glibc-compat.h")

log "zlib $ZLIB_VER"
(
	cd "$zlib_src"
	CC=$cc AR=${cross}ar RANLIB=${cross}ranlib CFLAGS="${cflags[*]}" ./configure --static >"$work/zlib.log" 2>&1
	make -j"$jobs" libz.a >>"$work/zlib.log" 2>&1
) || { tail -30 "$work/zlib.log" >&2; die "zlib build failed"; }
cp "$zlib_src/libz.a" "$stage/lib/"
cp "$zlib_src/zlib.h" "$zlib_src/zconf.h" "$stage/include/"

log "libelf (elfutils $ELFUTILS_VER)"
mkdir -p "$work/elfutils-build"
(
	cd "$work/elfutils-build"
	host=()
	[[ -z $cross ]] || host=(--host="$triple")
	CC=$cc CFLAGS="${cflags[*]}" CPPFLAGS="-I$stage/include" LDFLAGS="-L$stage/lib" \
		"$elfutils_src/configure" "${host[@]}" \
		--disable-debuginfod --disable-libdebuginfod --without-zstd --without-bzlib \
		--without-lzma --disable-nls --disable-demangler --disable-dependency-tracking \
		>"$work/elfutils.log" 2>&1
	# libelf.a, not libelf_pic.a: our CFLAGS already carry -fPIC, and the _pic
	# rule compiles every file twice (.os depends on .o) only to add libelf's
	# own symbol versions, which our version script hides anyway.
	make -C libelf -j"$jobs" libelf.a >>"$work/elfutils.log" 2>&1
) || { tail -30 "$work/elfutils.log" >&2; die "libelf build failed (log above)"; }
cp "$work/elfutils-build/libelf/libelf.a" "$stage/lib/libelf.a"
cp "$elfutils_src/libelf/libelf.h" "$elfutils_src/libelf/gelf.h" "$elfutils_src/libelf/nlist.h" "$stage/include/"

log "libbpf $LIBBPF_VER"
objs=(bpf btf libbpf libbpf_errno netlink nlattr str_error libbpf_probes bpf_prog_linfo
	btf_dump hashmap ringbuf strset linker gen_loader relo_core usdt)
objpaths=()
for o in "${objs[@]}"; do objpaths+=("$work/libbpf/sharedobjs/$o.o"); done
# Use libbpf's own "sharedobjs" rule (-fvisibility=hidden -DSHARED) for the
# objects, but link ourselves: its .so rule would pull -lelf -lz dynamically.
make -C "$libbpf_src/src" -j"$jobs" NO_PKG_CONFIG=1 OBJDIR="$work/libbpf" CC="$cc" \
	CFLAGS="-Wall -std=gnu89 ${cflags[*]}" EXTRA_CFLAGS="-I$stage/include" \
	"${objpaths[@]}" >"$work/libbpf.log" 2>&1 ||
	{ tail -30 "$work/libbpf.log" >&2; die "libbpf compile failed"; }
$cc "${cflags[@]}" -c "$here/glibc-compat.c" -o "$work/glibc-compat.o"

version=$(awk -F' *:= *' '
	/^LIBBPF_MAJOR_VERSION/ { ma = $2 } /^LIBBPF_MINOR_VERSION/ { mi = $2 }
	/^LIBBPF_PATCH_VERSION/ { pa = $2 } END { print ma "." mi "." pa }' "$libbpf_src/src/Makefile")
[[ $version == "${LIBBPF_VER%%-*}" ]] || die "libbpf Makefile says $version, pin says $LIBBPF_VER"

so=$work/libbpf.so
$cc -shared -o "$so" \
	-Wl,--version-script="$libbpf_src/src/libbpf.map" -Wl,-soname,libbpf.so.1 \
	"${objpaths[@]}" "$work/glibc-compat.o" \
	"$stage/lib/libelf.a" "$stage/lib/libz.a" \
	-static-libgcc -Wl,--as-needed -Wl,-z,relro,-z,now -Wl,--gc-sections \
	-Wl,--no-undefined -Wl,-O1 -Wl,--build-id=sha1 -s

# --- verify ----------------------------------------------------------------
dynamic=$(${cross}readelf -d "$so")
! grep -q TEXTREL <<<"$dynamic" || die "text relocations: some object was not built -fPIC"
needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$dynamic")
stray=$(grep -vxE 'libc\.so\.6|ld-linux-(x86-64|aarch64)\.so\.[0-9]+' <<<"$needed" || true)
[[ -z $stray ]] || die "unexpected NEEDED entries: $stray"
# Every defined dynamic symbol must carry a LIBBPF_* version from libbpf.map.
leaked=$(${cross}objdump -T "$so" | awk '!/\*UND\*/ && / D[FO] / && $(NF-1) !~ /^\(?LIBBPF_/' || true)
[[ -z $leaked ]] || die "symbols exported outside libbpf.map: $leaked"
floor=$(${cross}objdump -T "$so" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
[[ $(printf '%s\n' "GLIBC_$MAX_GLIBC" "$floor" | sort -V | tail -1) == "GLIBC_$MAX_GLIBC" ]] ||
	die "glibc floor is $floor (> GLIBC_$MAX_GLIBC): $(${cross}objdump -T "$so" | grep -E "\($floor\)")"
log "NEEDED: $(tr '\n' ' ' <<<"$needed")| glibc floor: $floor"

# --- cache + publish -------------------------------------------------------
mkdir -p "$work/out"
cp "$so" "$work/out/libbpf.so"
echo "$version" >"$work/out/libbpf.version"
rm -rf "$cached"
mv "$work/out" "$cached"
publish "built"
