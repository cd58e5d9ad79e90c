# SPDX-License-Identifier: GPL-2.0
# rkmemctl top, the live view, as a terminal shows it: `rkmemctl ptyshot` runs it in a
# pseudo-terminal of a given size, emulates a VT100 on what it writes (the vt100 crate) and
# prints the screen left when it exits; on stderr a summary: exit code, the longest line written
# (escape sequences skipped) and the rows the terminal wrapped. Sourced by suite.sh.

# Pseudo-terminals: the guest's init mounts no devpts. The um kernel has none
# (CONFIG_UNIX98_PTYS off): the tests skip there, and fail anywhere else without one.
top_pty() {
	if [ ! -e /dev/pts/ptmx ]; then
		mkdir -p /dev/pts
		mount -t devpts -o ptmxmode=0666 devpts /dev/pts 2>/dev/null
	fi
	[ -e /dev/pts/ptmx ] && return 0
	if [ "${RKMEM_FLAVOR:-}" = um ]; then
		skip "no pseudo-terminals in the um kernel (CONFIG_UNIX98_PTYS off)"
		return
	fi
	fail "cannot mount devpts on /dev/pts"
}

# top_shot ROWS COLS ARGS...: `rkmemctl top ARGS` in a ROWS x COLS terminal; the screen in
# /tmp/top.screen, the summary in /tmp/top.err, variables SHOT_RC, SHOT_LONGEST, SHOT_WRAPPED.
top_shot() {
	r=$1
	c=$2
	shift 2
	rkmemctl ptyshot --rows "$r" --cols "$c" --timeout 120 -- rkmemctl top "$@" >/tmp/top.screen 2>/tmp/top.err
	SHOT_RC=$?
	sum=$(grep '^ptyshot: ' /tmp/top.err | tail -n 1)
	SHOT_LONGEST=$(echo "$sum" | sed -n 's/.* longest line \([0-9]*\) of .*/\1/p')
	SHOT_WRAPPED=$(echo "$sum" | sed -n 's/.* wrapped rows: //p')
}

# Checks common to every shot: exited 0 with a summary, the screen has ROWS rows, none wider
# than COLS, nothing written wider than COLS, nothing wrapped, and the title on the first row.
top_shot_ok() {
	[ "$SHOT_RC" = 0 ] || fail "ptyshot/top exited $SHOT_RC: $(cat /tmp/top.err) $(head -n 3 /tmp/top.screen)" || return
	[ -n "$SHOT_LONGEST" ] || fail "no ptyshot summary: $(cat /tmp/top.err)" || return
	n=$(wc -l </tmp/top.screen)
	[ "$n" = "$1" ] || fail "the screen has $n rows, want $1" || return
	wide=$(awk -v c="$2" 'length($0) > c' /tmp/top.screen)
	[ -z "$wide" ] || fail "screen rows wider than $2 columns: $wide" || return
	[ "$SHOT_LONGEST" -le "$2" ] || fail "top wrote a line of $SHOT_LONGEST columns on a $2-column terminal" || return
	[ "$SHOT_WRAPPED" = none ] || fail "the terminal wrapped rows $SHOT_WRAPPED" || return
	head -n 1 /tmp/top.screen | grep -q "^rkmemctl top - frame $3 of $3" ||
		fail "first row is not frame $3's title: '$(head -n 1 /tmp/top.screen)'"
}

# The numbers after the first word of the screen row starting with $1 (one space apart).
screen_row() {
	sed -n "s/^$1  *//p" /tmp/top.screen | head -n 1 | tr -s ' '
}

test_top_draws_live_view() {
	top_pty || return
	rkmemctl cache hold topc --size 117 --count 500 >/tmp/top-cache.out 2>&1 &
	cpid=$!
	rkmemctl pages hold --order 2 --count 40 >/tmp/top-pages.out 2>&1 &
	ppid=$!
	if ! wait_line $cpid holding /tmp/top-cache.out || ! wait_line $ppid holding /tmp/top-pages.out; then
		kill $cpid $ppid 2>/dev/null
		wait $cpid $ppid 2>/dev/null
		fail "holders did not start: $(cat /tmp/top-cache.out /tmp/top-pages.out)"
		return
	fi
	# The load is static from here: the last frame must show what /proc says now.
	before=$(cat /proc/rkmem/buddyinfo)
	top_shot 40 120 --iterations 3 --interval 0.5
	buddy=$(cat /proc/rkmem/buddyinfo)
	occ=$(sed -n 's/^topc  *//p' /proc/rkmem/occupancy | tr -s ' ')
	active=$(sed -n 's/^topc  *\([0-9]*\) .*/\1/p' /proc/rkmem/slabinfo)
	kill $cpid $ppid
	wait $cpid $ppid 2>/dev/null
	echo "rkmemctl ptyshot --rows 40 --cols 120 -- rkmemctl top --iterations 3 --interval 0.5:"
	sed 's/^/    /' /tmp/top.screen
	cat /tmp/top.err
	top_shot_ok 40 120 3 || return
	for h in '^ARENA MAP  [0-9]+ of [0-9]+ slots, 64K per cell' '^slot [0-9]+ +[|][.#=: ]{64}[|]  used ' \
		'^FREE BLOCKS PER ORDER  [0-9]+ pages free, largest free order' \
		'^order +0 +1 +2 +3 +4 +5 +6 +7 +8 +9 +10$' '^block +4K +8K .* 4M$' '^free( +[0-9]+){11}$' \
		'^unusable( +[0-9]\.[0-9]{2}){11}$' '^extfrag( +-?[0-9]\.[0-9]{2}){11}$' \
		'^SLAB OCCUPANCY  [0-9]+ caches' '^cache +active +objs +use +size +slabs +KiB [|] +0% .* 100%$' \
		'^pages +allocs [0-9.]+/s +frees [0-9.]+/s' '^reclaim +async runs [+][0-9]+' \
		'^shrinker +count calls [+][0-9]+' '^compaction runs [+][0-9]+ +objects moved [+][0-9]+ +pages moved'; do
		grep -qE "$h" /tmp/top.screen || fail "no row matching '$h' on the screen" || return
	done
	[ "$before" = "$buddy" ] || fail "buddyinfo moved while top ran ('$before', then '$buddy'): the load was not static" || return
	want=$(echo "$buddy" | sed 's/^Node 0, zone *rkmem *//' | tr -s ' ' | sed 's/ $//')
	got=$(screen_row free)
	[ "$got" = "$want" ] || fail "free blocks per order on screen '$got', buddyinfo '$want'" || return
	row=$(grep -E '^topc ' /tmp/top.screen)
	[ -n "$row" ] || fail "the held cache topc is not on the screen" || return
	[ "$(echo "$row" | awk '{ print $2 }')" = "$active" ] || fail "topc row '$row', slabinfo active_objs $active" || return
	[ "$active" -ge 500 ] || fail "topc has $active active objects, 500 are held" || return
	[ "$(echo "$row" | sed 's/.*| *//' | tr -s ' ')" = "$occ" ] || fail "topc occupancy on screen '$row', /proc/rkmem/occupancy '$occ'" || return
	# The last frame alone: the first frame's activity title (longer than the later one) and
	# nothing below the frame's last row.
	! grep -q 'first frame' /tmp/top.screen || fail "a first-frame line is still on the screen" || return
	grep -qE '^ACTIVITY  over the last [0-9]+\.[0-9]{2} s: per second, or [+]changes [(]totals since load[)]$' /tmp/top.screen ||
		fail "activity title: '$(grep ACTIVITY /tmp/top.screen)'" || return
	last=$(grep -n '^compaction runs' /tmp/top.screen | cut -d: -f1)
	below=$(tail -n +$((last + 1)) /tmp/top.screen | grep .)
	[ -z "$below" ] || fail "rows below the frame: $below"
}

# On a 10 x 40 terminal the frame is cut to 9 rows of at most 40 columns: nothing wraps, the
# title stays on the first row. The check's own control: a 60-column line on the same terminal
# must be seen as wrapped.
test_top_fits_a_small_terminal() {
	top_pty || return
	rkmemctl ptyshot --rows 10 --cols 40 -- sh -c 'printf "%060d\r\n" 0' >/tmp/top-ctl.screen 2>/tmp/top-ctl.err
	grep -q 'longest line 60 of 40 columns, wrapped rows: 1$' /tmp/top-ctl.err ||
		fail "the control's wrapped line was not seen: $(cat /tmp/top-ctl.err)" || return
	top_shot 10 40 --iterations 2 --interval 0.2
	cat /tmp/top.screen
	top_shot_ok 10 40 2 || return
	[ -z "$(tail -n 1 /tmp/top.screen)" ] || fail "the last row is not left free: '$(tail -n 1 /tmp/top.screen)'" || return
	n=$(grep -c . /tmp/top.screen)
	[ "$n" = 9 ] || fail "$n rows drawn on a 10-row terminal, want 9" || return
	sed -n 2p /tmp/top.screen | grep -q '^ARENA MAP  [0-9]* of [0-9]* slots, 256K per' ||
		fail "second row: '$(sed -n 2p /tmp/top.screen)'"
}

# Activity since the previous frame: pages allocated and freed (stress pages), compaction runs
# (/proc/rkmem/compact) and shrinker calls (drop_caches) going on while top draws; each must
# show in the last frame's interval (3 s on the debug kernel, where a round of the loop is slow).
test_top_shows_activity() {
	top_pty || return
	rkmemctl stress pages --threads 1 --seconds 20 >/tmp/top-stress.out 2>&1 &
	spid=$!
	(
		while [ ! -e /tmp/top-stop ]; do
			echo 1 >/proc/rkmem/compact
			echo 2 >/proc/sys/vm/drop_caches
			sleep 0.1
		done
	) &
	lpid=$!
	sleep 1
	interval=1
	[ "${RKMEM_FLAVOR:-}" = debug ] && interval=3
	top_shot 40 120 --iterations 3 --interval $interval
	touch /tmp/top-stop
	wait $lpid
	rm -f /tmp/top-stop
	kill $spid 2>/dev/null
	wait $spid 2>/dev/null
	grep -E '^(ACTIVITY|pages|reclaim|shrinker|compaction) ' /tmp/top.screen
	top_shot_ok 40 120 3 || return
	grep -qE '^pages +allocs [1-9][0-9]*\.[0-9]/s +frees [1-9][0-9]*\.[0-9]/s' /tmp/top.screen ||
		fail "no page allocations and frees per second: $(grep '^pages' /tmp/top.screen)" || return
	grep -qE '^compaction runs [+][1-9]' /tmp/top.screen ||
		fail "no compaction run in the last interval: $(grep '^compaction' /tmp/top.screen)" || return
	grep -qE '^shrinker +count calls [+][1-9]' /tmp/top.screen ||
		fail "no shrinker call in the last interval: $(grep '^shrinker' /tmp/top.screen)"
}

t top_draws_live_view test_top_draws_live_view
t top_fits_a_small_terminal test_top_fits_a_small_terminal
t top_shows_activity test_top_shows_activity
