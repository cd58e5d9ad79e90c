#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent set-up of everything rkmem needs to build a Rust-enabled kernel,
# the module and the guest: Debian packages, the kernel source, the Rust std
# sources that match `rustc --version`, a pinned bindgen-cli. Every download
# lands in $RKMEM_CACHE; a second run does nothing but check.
set -euo pipefail
. "$(dirname "$0")/env.sh"

APT_PACKAGES=(
	make bc flex bison libelf-dev libssl-dev cpio xz-utils
	clang$LLVM_SUFFIX lld$LLVM_SUFFIX llvm$LLVM_SUFFIX libclang$LLVM_SUFFIX-dev
	qemu-system-x86 busybox-static
	python3-matplotlib
	procps prometheus-node-exporter collectd-core jc
)
EXTRA_SUITE=trixie-backports

[ -n "$RUSTC_VERSION" ] || die "rustc not found on PATH: install the Rust toolchain (rustup) first"
command -v cargo >/dev/null || die "cargo not found on PATH"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_apt_packages() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing Debian packages: ${missing[*]}"
	as_root apt-get update -qq || die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || die "apt-get install failed for: ${missing[*]}"
	for p in "${missing[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			die "Debian package $p did not install"
	done
}

# The Debian mirror this machine already uses, read from its apt sources
# (never hard-coded).
debian_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) s = 1 }
			/^$/ { if (u != "" && s) { print u; exit } u = ""; s = 0 }
			END { if (u != "" && s) print u }' "$f" | head -n1)
		case "$uri" in *debian*) echo "$uri"; return 0 ;; esac
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" && $0 !~ /security/ && $0 ~ /debian/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	return 1
}

# apt-get against a private sources list and state directory for the extra
# suite, so nothing on the machine is upgraded from it.
extra_apt() {
	local d="$RKMEM_CACHE/apt" tool=apt-get
	case "$1" in madison | policy | show) tool=apt-cache ;; esac
	"$tool" -q \
		-o Dir::Etc::SourceList="$d/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State="$d/state" \
		-o Dir::State::Status="$d/state/status" \
		-o Dir::Cache="$d/cache" \
		-o APT::Architecture=amd64 \
		-o Debug::NoLocking=1 \
		-o APT::Sandbox::User=root \
		"$@"
}

prepare_extra_suite() {
	local d="$RKMEM_CACHE/apt" mirror
	[ -f "$d/state/lists/.ok" ] && return 0
	mirror=$(debian_mirror) || die "cannot find a Debian mirror in /etc/apt/sources.list*"
	mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial"
	: >"$d/state/status"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $EXTRA_SUITE main" \
		>"$d/sources.list"
	say "reading $EXTRA_SUITE package lists from $mirror"
	extra_apt update >/dev/null || die "apt-get update for $EXTRA_SUITE failed (mirror $mirror)"
	touch "$d/state/lists/.ok"
}

# Download package $1 at a version matching the glob $2 into $3.
fetch_deb() {
	local pkg=$1 verglob=$2 dest=$3 ver
	local v
	ver=
	for v in $(extra_apt madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}'); do
		# shellcheck disable=SC2254
		case "$v" in $verglob) ver=$v; break ;; esac
	done
	if [ -z "$ver" ]; then
		local have
		have=$(extra_apt madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); printf "%s ", $2}')
		die "no $pkg matching '$verglob' in $EXTRA_SUITE (available: ${have:-none})"
	fi
	mkdir -p "$dest"
	(cd "$dest" && extra_apt download "$pkg=$ver" >/dev/null) ||
		die "download of $pkg=$ver failed"
	ls "$dest"/"${pkg}"_*.deb >/dev/null 2>&1 || die "package $pkg=$ver did not download"
}

fetch_kernel_source() {
	[ -f "$KSRC/Makefile" ] && return 0
	prepare_extra_suite
	local tmp
	tmp=$(mktemp -d "$RKMEM_CACHE/tmp.XXXXXX")
	say "fetching linux-source-$KVER"
	fetch_deb "linux-source-$KVER" '*' "$tmp"
	dpkg-deb -x "$tmp"/linux-source-"$KVER"_*.deb "$tmp/x"
	local tarball
	tarball=$(ls "$tmp"/x/usr/src/linux-source-"$KVER".tar.* 2>/dev/null | head -n1)
	[ -n "$tarball" ] || die "linux-source-$KVER package holds no source tarball"
	say "unpacking $(basename "$tarball")"
	mkdir -p "$tmp/src"
	tar -xf "$tarball" -C "$tmp/src"
	mkdir -p "$(dirname "$KSRC")"
	rm -rf "$KSRC"
	mv "$tmp/src/linux-source-$KVER" "$KSRC"
	rm -rf "$tmp"
}

fetch_rust_src() {
	[ -f "$RUST_LIB_SRC/core/src/lib.rs" ] && return 0
	prepare_extra_suite
	local tmp
	tmp=$(mktemp -d "$RKMEM_CACHE/tmp.XXXXXX")
	say "fetching rust-src $RUSTC_VERSION (to match rustc $RUSTC_VERSION)"
	fetch_deb rust-src "$RUSTC_VERSION[+-~]*" "$tmp"
	dpkg-deb -x "$tmp"/rust-src_*.deb "$tmp/x"
	local lib
	lib=$(ls -d "$tmp"/x/usr/src/rustc-"$RUSTC_VERSION"/library 2>/dev/null | head -n1)
	[ -n "$lib" ] || die "rust-src package holds no usr/src/rustc-$RUSTC_VERSION/library"
	mkdir -p "$(dirname "$RUST_LIB_SRC")"
	rm -rf "$RUST_LIB_SRC"
	mv "$lib" "$RUST_LIB_SRC"
	rm -rf "$tmp"
}

install_bindgen() {
	if [ -x "$TOOLS/bin/bindgen" ] &&
		"$TOOLS/bin/bindgen" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		return 0
	fi
	say "installing bindgen-cli $BINDGEN_VERSION (about 2 minutes)"
	cargo install --quiet --locked --root "$TOOLS" bindgen-cli --version "=$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed"
}

check_rust_available() {
	local stamp="$RKMEM_CACHE/.rustavailable-$KVER-$RUSTC_VERSION-$BINDGEN_VERSION"
	[ -f "$stamp" ] && return 0
	local out
	if ! out=$(make -s -C "$KSRC" "${KMAKE_ARGS[@]}" rustavailable 2>&1); then
		echo "$out" >&2
		die "the kernel's 'make rustavailable' failed (see above)"
	fi
	echo "$out" | grep -q "Rust is available" || { echo "$out" >&2; die "Rust is not available"; }
	touch "$stamp"
}

mkdir -p "$RKMEM_CACHE"
install_apt_packages
fetch_kernel_source
fetch_rust_src
install_bindgen
check_rust_available
say "toolchain ready: kernel $KVER source, rustc $RUSTC_VERSION + rust-src, bindgen $BINDGEN_VERSION, clang$LLVM_SUFFIX (cache: $RKMEM_CACHE)"
