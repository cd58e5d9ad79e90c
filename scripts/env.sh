# SPDX-License-Identifier: GPL-2.0
# Shared settings for rkmem's scripts. Source it; do not run it.
#
# Everything downloaded or built lives under $RKMEM_CACHE (default ~/.cache/rkmem),
# outside the repository, so a fresh clone reuses it.

RKMEM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RKMEM_CACHE=${RKMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rkmem}
KVER=${KVER:-7.3}
LLVM_SUFFIX=${LLVM_SUFFIX:--19}
BINDGEN_VERSION=${BINDGEN_VERSION:-0.73.2}
JOBS=${JOBS:-$(($(nproc) + 1))}
# The Python that draws the benchmark plots: Debian's, for which setup.sh installs
# python3-matplotlib (a python3 ahead of it on PATH, pyenv's say, does not see Debian's packages).
RKMEM_PYTHON=${RKMEM_PYTHON:-/usr/bin/python3}

RUSTC_VERSION=$(rustc --version 2>/dev/null | awk '{print $2}')
KSRC="$RKMEM_CACHE/src/linux-$KVER"
RUST_LIB_SRC="$RKMEM_CACHE/rust-src/$RUSTC_VERSION/library"
TOOLS="$RKMEM_CACHE/tools"
export PATH="$TOOLS/bin:$PATH"
if command -v "llvm-config$LLVM_SUFFIX" >/dev/null 2>&1; then
	LIBCLANG_PATH=$("llvm-config$LLVM_SUFFIX" --libdir)
	export LIBCLANG_PATH
fi
export RUST_LIB_SRC

# Arguments every kernel or module make invocation needs.
KMAKE_ARGS=(LLVM="$LLVM_SUFFIX" RUST_LIB_SRC="$RUST_LIB_SRC")

die() {
	echo "rkmem: error: $*" >&2
	exit 1
}

say() {
	echo "rkmem: $*" >&2
}

# Key of a kernel build: kernel version, config fragment, toolchain versions
# and the build script. Anything else changing does not rebuild the kernel.
kernel_key() {
	local flavor=$1
	{
		echo "kver=$KVER"
		echo "rustc=$RUSTC_VERSION"
		echo "llvm=$LLVM_SUFFIX"
		echo "bindgen=$BINDGEN_VERSION"
		# debug and race are merged onto fast: a change to either fragment rebuilds them.
		case $flavor in debug | race) cat "$RKMEM_ROOT/qemu/config-fast" ;; esac
		cat "$RKMEM_ROOT/qemu/config-$flavor"
		cat "$RKMEM_ROOT/scripts/build-kernel.sh"
	} | sha256sum | cut -c1-12
}

kernel_dir() {
	echo "$RKMEM_CACHE/kernel/$1-$(kernel_key "$1")"
}

# The kernel architecture of a flavour: fast and debug are x86 kernels booted
# in QEMU, um is User-Mode Linux (the kernel as a host process, native speed).
kernel_arch() {
	case "$1" in um) echo um ;; *) echo x86 ;; esac
}

# The bootable image of a flavour inside its build directory.
kernel_image() {
	case "$1" in um) echo "$2/linux" ;; *) echo "$2/arch/x86/boot/bzImage" ;; esac
}

# Kernel/module make arguments of a flavour (KMAKE_ARGS plus ARCH).
flavor_make_args() {
	echo ARCH="$(kernel_arch "$1")"
}
