#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test. Host tests of rust/core and the ABI, rkmem's KUnit suite
# through the kernel's own kunit.py (UML, rkmem built in), then the in-guest suite on the
# fast and the debug kernel (QEMU) and on the um kernel (User-Mode Linux: another
# architecture's module loader, native speed), and the race suite on the race kernel (QEMU,
# KCSAN). After the fast guest, the /proc/rkmem files it captured under load go through real
# parsers on the host. Ends with one line
# `check: N passed, N failed, N skipped` and exits non-zero on any failure,
# guest crash or timeout.
set -uo pipefail
. "$(dirname "$0")/env.sh"

# Any compiler, clippy or objtool warning in the module build fails the check.
export RKMEM_WERROR=1 RKMEM_CLIPPY=1

PASSED=0
FAILED=0
SKIPPED=0
# The load the guests held (their RKMEM-LOAD lines, added up over the kernels).
LOAD_OPS=0 LOAD_BYTES=0 LOAD_FUZZ=0 LOAD_FAULTS=0
start=$(date +%s)

# Set-up failures are failures of the whole run: say so and stop.
"$RKMEM_ROOT/scripts/setup.sh" || { echo "check: 0 passed, 1 failed"; exit 1; }

section() { echo; echo "=== $* ==="; }

# cargo_tests TITLE TARGET_DIR MANIFEST [ARGS...]: run cargo test and add its counts.
cargo_tests() {
	local title=$1 target=$2 manifest=$3 log rc counts p f s
	shift 3
	section "host: cargo test ($title)"
	log=$(mktemp)
	CARGO_TARGET_DIR="$target" cargo test --locked --manifest-path "$manifest" "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	counts=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed; \([0-9][0-9]*\) failed; \([0-9][0-9]*\) ignored.*/\1 \2 \3/p' "$log" |
		awk '{p += $1; f += $2; s += $3} END {print p + 0, f + 0, s + 0}')
	read -r p f s <<<"$counts"
	PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "check: cargo test of $manifest failed without a failing test (build error?)"
		FAILED=$((FAILED + 1))
	fi
	rm -f "$log"
}
cargo_tests "rust/core, rust/uapi.rs, rkmemctl" "$RKMEM_CACHE/cargo-target" \
	"$RKMEM_ROOT/tests/Cargo.toml" --workspace
# The host benchmarks' own workspace: every case conserves free pages/objects on both sides.
cargo_tests "tests/bench: benchmark cases conserve free pages and objects" \
	"$RKMEM_CACHE/cargo-target-bench" "$RKMEM_ROOT/tests/bench/Cargo.toml"

# A host test script that ends with `NAME: N passed, N failed`: add its counts.
counted_tests() {
	local title=$1 log rc counts p f
	shift
	section "host: $title"
	log=$(mktemp)
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	counts=$(sed -n 's/^[a-z-]*: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$log" | tail -n1)
	read -r p f <<<"${counts:-0 0}"
	PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "check: $* failed without a failing test"
		FAILED=$((FAILED + 1))
	fi
	rm -f "$log"
}
# The benchmark report's figures (matplotlib, PNG and SVG) from the committed results.
counted_tests "benchmark plots from tests/results (matplotlib)" \
	"$RKMEM_PYTHON" "$RKMEM_ROOT/tests/report/plots_test.py"
# The lab chapters' pictures (matplotlib, PNG) from the committed lab run, and the README's
# screenshots of them.
counted_tests "lab pictures from tests/results (matplotlib)" \
	"$RKMEM_PYTHON" "$RKMEM_ROOT/tests/report/lab_figures_test.py"

section "lint: rustfmt and clippy (host crates, kernel lint set)"
lint() {
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		PASSED=$((PASSED + 1))
	else
		echo "not ok - $name"
		FAILED=$((FAILED + 1))
	fi
}
lint rustfmt make -s -C "$RKMEM_ROOT" fmt-check
# The README's benchmark tables are generated from the committed native results, never typed.
lint readme-bench-tables env -C "$RKMEM_ROOT" python3 scripts/bench_report.py readme \
	tests/results/bench-native.jsonl README.md --tcg tests/results/bench-tcg.jsonl --check
lint clippy-host env CARGO_TARGET_DIR="$RKMEM_CACHE/cargo-target" cargo clippy --quiet --locked \
	--manifest-path "$RKMEM_ROOT/tests/Cargo.toml" --workspace --all-targets -- -D warnings

# rkmem's KUnit suite through the kernel's own tools/testing/kunit/kunit.py run: UML, rkmem
# built in (scripts/kunit.sh; its kernel is cached: warm, an incremental build and a boot).
# Fails if kunit.py fails, if the suite is missing or a case fails, or if the number of cases
# it ran is not the number of #[test]s in rust/checks/kunit.rs.
counted_tests "KUnit suite rkmem through kunit.py run (UML, rkmem built in)" \
	"$RKMEM_ROOT/scripts/kunit.sh"

# The guest runs: the suite on each kernel; on the debug kernel also one boot per KASAN check
# (the module loaded with kasan_check=1, then 2: KASAN must report rkmem's own bad access).
# The race kernel (KCSAN, lockdep) runs its own, shorter suite: the concurrent tests
# (tests/guest/race.sh).
runs=
for flavor in ${CHECK_FLAVORS:-fast debug race um}; do
	case $flavor in
	race) runs="$runs race:race:" ;;
	debug) runs="$runs debug:check: debug:kasancheck:kasan_check=1 debug:kasancheck:kasan_check=2" ;;
	*) runs="$runs $flavor:check:" ;;
	esac
done
for run in $runs; do
	flavor=${run%%:*} rest=${run#*:}
	cmd=${rest%%:*} params=${rest#*:}
	section "guest: $flavor kernel${params:+, $params}: $cmd"
	log="$RKMEM_CACHE/logs/check-$flavor-$cmd${params:+-${params//=/}}.log"
	# The debug kernel (KASAN, lockdep, kmemleak under TCG) runs the same suite about ten
	# times slower: about 30 minutes since the compaction, fail-nth and stress tests came.
	case $flavor in
	debug) timeout=${TIMEOUT:-2400} ;;
	*) timeout=${TIMEOUT:-900} ;;
	esac
	RKMEM_PARAMS=$params TIMEOUT=$timeout "$RKMEM_ROOT/scripts/guest.sh" "$flavor" "$cmd" "$log"
	grc=$?
	summary=$(tr -d '\r' <"$log" 2>/dev/null | sed -n 's/^RKMEM-SUMMARY passed=\([0-9]*\) failed=\([0-9]*\) skipped=\([0-9]*\)$/\1 \2 \3/p' | tail -n1)
	load=$(tr -d '\r' <"$log" 2>/dev/null | sed -n 's/^RKMEM-LOAD ops=\([0-9]*\) bytes=\([0-9]*\) fuzz_calls=\([0-9]*\) faults=\([0-9]*\)$/\1 \2 \3 \4/p' | tail -n1)
	if [ -n "$load" ]; then
		read -r o b z i <<<"$load"
		echo "check: the $flavor kernel held $o allocator operations verified ($b bytes), $z fuzz calls, $i faults injected"
		LOAD_OPS=$((LOAD_OPS + o)); LOAD_BYTES=$((LOAD_BYTES + b))
		LOAD_FUZZ=$((LOAD_FUZZ + z)); LOAD_FAULTS=$((LOAD_FAULTS + i))
	fi
	if [ -n "$summary" ]; then
		read -r p f s <<<"$summary"
		PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
		if [ "$grc" != 0 ] && [ "$f" = 0 ]; then
			echo "check: the $flavor guest exited $grc after its summary"
			FAILED=$((FAILED + 1))
		fi
	else
		echo "check: the $flavor guest gave no summary (exit $grc: crash, timeout or build failure; log: $log)"
		FAILED=$((FAILED + 1))
	fi
	# The /proc/rkmem files the fast suite captured under load (tests/guest/procfiles.sh), read
	# by the real clients on the host: procps slabtop, prometheus-node-exporter, collectd, jc.
	if [ "$flavor:$cmd" = fast:check ]; then
		counted_tests "real parsers of /proc/rkmem's kernel formats (the fast guest's capture)" \
			"$RKMEM_PYTHON" "$RKMEM_ROOT/tests/parsers/procparsers.py" "$log"
	fi
done

echo
echo "check: load held: $LOAD_OPS allocator operations verified ($((LOAD_BYTES >> 30)) GiB checked), $LOAD_FUZZ fuzz calls, $LOAD_FAULTS faults injected"
echo "check took $(($(date +%s) - start)) s"
echo "check: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
