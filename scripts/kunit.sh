#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make kunit`: rkmem's KUnit suite (rust/checks/kunit.rs) through the kernel's own runner,
# `tools/testing/kunit/kunit.py run`, on UML (its default), with qemu/rkmem.kunitconfig.
#
# kunit.py builds and boots a kernel of its own and cannot load a module, so rkmem is built
# into it: a private copy of the kernel tree ($RKMEM_CACHE/kunit/src-<version>, `cp -al` of
# the pristine source: hard links, instant, no space) gets rkmem as an in-tree driver,
# drivers/misc/rkmem (symlinks to this checkout's Kbuild and rust/, a Kconfig entry
# CONFIG_RKMEM). The two files of that tree it changes (drivers/misc/Kconfig and Makefile) are
# replaced by new files, never written through their hard links. The build directory is
# keyed by the kernel and toolchain versions and kept, so a second run is incremental.
#
# Ends with `kunit: N passed, N failed` (the rkmem cases kunit.py reports) and fails if
# kunit.py fails, if the suite rkmem is missing from its results, if any case did not pass (a
# skipped case did not: every case must run on UML),
# or if it ran another number of cases than rust/checks/kunit.rs has #[test]s.
set -euo pipefail
. "$(dirname "$0")/env.sh"

[ -f "$KSRC/Makefile" ] || die "no kernel source in $KSRC: run scripts/setup.sh"
# kunit.py needs only the standard library: Debian's python3 (setup.sh installs it) will do.
PYTHON=${KUNIT_PYTHON:-$RKMEM_PYTHON}
kdir="$RKMEM_CACHE/kunit"
tree="$kdir/src-$KVER"
key=$({
	echo "kver=$KVER"
	echo "rustc=$RUSTC_VERSION"
	echo "llvm=$LLVM_SUFFIX"
	echo "bindgen=$BINDGEN_VERSION"
} | sha256sum | cut -c1-12)
build="$kdir/build-$key"
kunitconfig="$RKMEM_ROOT/qemu/rkmem.kunitconfig"
start=$(date +%s)

mkdir -p "$kdir"
# One run at a time: the tree's symlinks point at the checkout that runs.
exec 9>"$kdir/.lock"
flock 9

# Only the current kernel version's tree and the current key's build are kept.
for old in "$kdir"/src-* "$kdir"/build-*; do
	[ -d "$old" ] && [ "$old" != "$tree" ] && [ "$old" != "$build" ] && rm -rf "$old"
done

# put FILE: stdin becomes FILE's content, as a new file (a new inode: a hard link to the
# pristine source is dropped, never written through), and only if it differs (an unchanged
# file keeps its timestamp, so the build stays incremental).
put() {
	cat >"$1.rkmem-new"
	if cmp -s "$1.rkmem-new" "$1"; then
		rm -f "$1.rkmem-new"
	else
		mv -f "$1.rkmem-new" "$1"
	fi
}

if [ ! -d "$tree" ]; then
	say "making the kunit tree $tree (hard links to $KSRC)"
	rm -rf "$tree.tmp"
	cp -al "$KSRC" "$tree.tmp"
	mv "$tree.tmp" "$tree"
fi
# rkmem as an in-tree driver, written on every run (put: unchanged files are left alone), each
# file of drivers/misc made from the pristine one.
misc="$tree/drivers/misc"
sed '$!b; /^endmenu$/i source "drivers/misc/rkmem/Kconfig"' "$KSRC/drivers/misc/Kconfig" | put "$misc/Kconfig"
{ cat "$KSRC/drivers/misc/Makefile"; echo 'obj-$(CONFIG_RKMEM)		+= rkmem/'; } | put "$misc/Makefile"
grep -q 'drivers/misc/rkmem/Kconfig' "$misc/Kconfig" || die "could not hook rkmem into $misc/Kconfig"
for f in Kconfig Makefile; do
	[ "$misc/$f" -ef "$KSRC/drivers/misc/$f" ] && die "$misc/$f is still a hard link to the pristine source"
done
if grep -q rkmem "$KSRC/drivers/misc/Makefile" "$KSRC/drivers/misc/Kconfig"; then
	die "the pristine source $KSRC/drivers/misc mentions rkmem: re-extract it (scripts/setup.sh)"
fi
mkdir -p "$misc/rkmem"
put "$misc/rkmem/Kconfig" <<'KCONFIG'
# SPDX-License-Identifier: GPL-2.0
# Written by rkmem's scripts/kunit.sh into its private kernel tree for kunit.py.
config RKMEM
	bool "rkmem: Rust allocators beside the kernel's (built in, for kunit.py)"
	depends on RUST && PROC_FS
	help
	  rkmem built into the kernel, so that tools/testing/kunit/kunit.py runs its KUnit
	  suite. The module itself is built out of tree (its Kbuild and rust/ are linked here).
KCONFIG
# The object list is the repository's Kbuild (an out-of-tree obj-m), built in here.
put "$misc/rkmem/Kbuild" <<'KBUILD'
# SPDX-License-Identifier: GPL-2.0
# Written by rkmem's scripts/kunit.sh: the repository's Kbuild, built in.
include $(src)/Kbuild.rkmem
obj-m :=
obj-$(CONFIG_RKMEM) += rkmem.o
KBUILD
# This checkout's sources (ln -sfn: re-pointed when another checkout runs).
ln -sfn "$RKMEM_ROOT/Kbuild" "$tree/drivers/misc/rkmem/Kbuild.rkmem"
ln -sfn "$RKMEM_ROOT/rust" "$tree/drivers/misc/rkmem/rust"
# make goes by timestamps: sources of another checkout (or another commit) may be older than
# the objects last built, so when their content differs from the last run's, rkmem's objects
# are removed and rebuilt (only them: the rest of the kernel stays).
src_hash=$(cd "$RKMEM_ROOT" && find Kbuild rust -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
if [ -d "$build" ] && [ "$(cat "$build/.rkmem-src" 2>/dev/null)" != "$src_hash" ]; then
	rm -rf "$build/drivers/misc/rkmem"
fi

want=$(grep -c '^[[:space:]]*#\[test\]' "$RKMEM_ROOT/rust/checks/kunit.rs")
make_opts=()
for a in "${KMAKE_ARGS[@]}"; do make_opts+=(--make_options "$a"); done
[ -d "$build" ] || say "building the kunit UML kernel in $build (cold: several minutes)"
mkdir -p "$build"
json="$build/rkmem-results.json"
rm -f "$json"
# kunit.py's own lines are shown (they start with a [HH:MM:SS] stamp); the compiler's warnings
# it prints after a build go only to the log; its last lines are shown when it gave no results.
log="$build/rkmem-kunit.log"
set +e
"$PYTHON" "$tree/tools/testing/kunit/kunit.py" run \
	--build_dir "$build" --kunitconfig "$kunitconfig" "${make_opts[@]}" --jobs "$JOBS" \
	--kernel_args seccomp=on --kernel_args ncpus=2 --timeout "${KUNIT_TIMEOUT:-300}" \
	--json="$json" rkmem 2>&1 | tee "$log" | grep --line-buffered '^\[[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\] '
rc=${PIPESTATUS[0]}
set -e
echo "$src_hash" >"$build/.rkmem-src"

# The rkmem suite's cases in kunit.py's results.
counts=$("$PYTHON" - "$json" <<'PY' 2>/dev/null
import json, sys
def find(g):
    if g.get("name") == "rkmem":
        return g
    for s in g.get("sub_groups", []):
        r = find(s)
        if r:
            return r
try:
    suite = find(json.load(open(sys.argv[1])))
except (OSError, ValueError):
    suite = None
if suite is None:
    print("none")
else:
    cases = suite["test_cases"]
    print(sum(c["status"] == "PASS" for c in cases), sum(c["status"] != "PASS" for c in cases))
PY
) || counts=none
echo "kunit: kunit.py exited $rc in $(($(date +%s) - start)) s; its output: $log, the kernel's: $build/test.log"
if [ "$counts" = none ] || [ -z "$counts" ]; then
	echo "kunit: the end of kunit.py's output ($log):"
	tail -n 40 "$log"
	echo "kunit: not ok - the suite rkmem is missing from kunit.py's results"
	echo "kunit: 0 passed, 1 failed"
	exit 1
fi
read -r passed failed <<<"$counts"
ran=$((passed + failed))
[ "$failed" = 0 ] || echo "kunit: not ok - $failed of rkmem's $ran cases did not pass"
if [ "$ran" != "$want" ]; then
	echo "kunit: not ok - kunit.py ran $ran rkmem cases, rust/checks/kunit.rs has $want #[test]s"
	failed=$((failed + 1))
fi
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
	echo "kunit: not ok - kunit.py failed though every rkmem case passed"
	failed=1
fi
echo "kunit: $passed passed, $failed failed"
[ "$failed" = 0 ]
