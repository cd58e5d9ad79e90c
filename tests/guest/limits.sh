# SPDX-License-Identifier: GPL-2.0
# In-guest tests of the limits on what user space can take through /dev/rkmem: the per-file
# cap (file_max_mb, EDQUOT) and the memory cgroup charge of the arena's growth. Sourced by
# suite.sh (uses lib.sh's helpers).

test_file_cap_is_edquot() {
	unload || fail "rmmod failed" || return
	load file_max_mb=1 || fail "insmod file_max_mb=1 failed" || return
	# 1 MiB: 256 pages in one order-8 block fits; one more page does not.
	out1=$(rkmemctl pages alloc --order 8 --count 1 2>&1)
	rc1=$?
	out2=$(rkmemctl pages alloc --order 8 --count 2 2>&1)
	rc2=$?
	out3=$(rkmemctl pages alloc --exact 257 2>&1)
	rc3=$?
	unload || fail "rmmod after file_max_mb=1 failed" || return
	load || fail "reload failed" || return
	[ $rc1 = 0 ] || fail "1 MiB under a 1 MiB cap failed: $out1" || return
	[ $rc2 != 0 ] && echo "$out2" | grep -q "Disk quota exceeded\|EDQUOT" ||
		fail "a second 1 MiB block under a 1 MiB cap: want EDQUOT, got rc $rc2: $out2" || return
	[ $rc3 != 0 ] && echo "$out3" | grep -q "Disk quota exceeded\|EDQUOT" ||
		fail "257 pages under a 1 MiB cap: want EDQUOT, got rc $rc3: $out3"
}

test_param_file_cap_zero() { bad_param file_max_mb=0 "invalid parameter file_max_mb: file_max_mb=0: must be 1..=65536"; }

# The arena's growth is charged to the memory cgroup of the allocating task: in a cgroup
# limited to 16 MiB, growing the arena by 32 MiB fails with ENOMEM instead of passing the limit.
test_memcg_limits_arena_growth() {
	mkdir -p /sys/fs/cgroup
	mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null ||
		skip "no cgroup2 file system" || return
	echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
	mkdir -p /sys/fs/cgroup/rkmem-test
	[ -f /sys/fs/cgroup/rkmem-test/memory.max ] || skip "no memory controller" || return
	echo 16M >/sys/fs/cgroup/rkmem-test/memory.max
	rkmemctl trim >/dev/null
	out=$(sh -c 'echo $$ >/sys/fs/cgroup/rkmem-test/cgroup.procs && exec rkmemctl pages alloc --order 10 --count 8' 2>&1)
	rc=$?
	events=$(sed -n 's/^max //p' /sys/fs/cgroup/rkmem-test/memory.events)
	rkmemctl trim >/dev/null
	rmdir /sys/fs/cgroup/rkmem-test 2>/dev/null
	[ $rc != 0 ] && echo "$out" | grep -q "Cannot allocate memory\|ENOMEM" ||
		fail "32 MiB in a 16 MiB cgroup: want ENOMEM, got rc $rc: $out" || return
	[ "${events:-0}" -gt 0 ] || fail "memory.events shows no 'max' event: the arena was not charged"
}

t file_cap_is_edquot test_file_cap_is_edquot
t param_file_cap_zero test_param_file_cap_zero
t memcg_limits_arena_growth test_memcg_limits_arena_growth
