// SPDX-License-Identifier: GPL-2.0

//! The ioctl numbers computed by `rust/uapi.rs` against the values the kernel's `_IOR` macro
//! gives for the same type, size and number (x86_64 encoding).

use crate::uapi::*;

#[test]
fn version_ioctl_number_matches_ior() {
    // _IOR(0xB9, 0x00, struct rkmem_version) = dir 2 << 30 | size 16 << 16 | 0xB9 << 8 | 0
    assert_eq!(RKMEM_IOC_VERSION, (2 << 30) | (16 << 16) | (0xB9 << 8));
    assert_eq!(RKMEM_IOC_VERSION, 0x8010_b900);
}

#[test]
fn iowr_sets_both_directions() {
    assert_eq!(iowr::<u64>(5) >> 30, 3);
    assert_eq!(iow::<u64>(5) >> 30, 1);
    assert_eq!((iowr::<u64>(5) >> 16) & 0x3fff, 8);
    assert_eq!(iowr::<u64>(5) & 0xff, 5);
}

#[test]
fn version_struct_has_no_holes() {
    use core::mem::{offset_of, size_of};
    assert_eq!(offset_of!(RkmemVersion, abi_version), 0);
    assert_eq!(offset_of!(RkmemVersion, major), 4);
    assert_eq!(offset_of!(RkmemVersion, minor), 6);
    assert_eq!(offset_of!(RkmemVersion, patch), 8);
    assert_eq!(offset_of!(RkmemVersion, pad), 10);
    assert_eq!(offset_of!(RkmemVersion, features), 12);
    assert_eq!(size_of::<RkmemVersion>(), 16);
}

// The buddy allocator's ioctls. Each number is written out by hand from the encoding of
// include/uapi/asm-generic/ioctl.h: dir << 30 | size << 16 | type 0xB9 << 8 | nr, with dir
// 1 = _IOW, 2 = _IOR, 3 = _IOWR.

#[test]
fn pages_alloc_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x10, struct rkmem_pages_alloc): 32 bytes.
    assert_eq!(
        RKMEM_IOC_PAGES_ALLOC,
        (3 << 30) | (32 << 16) | (0xB9 << 8) | 0x10
    );
    assert_eq!(RKMEM_IOC_PAGES_ALLOC, 0xc020_b910);
}

#[test]
fn free_ioctl_number_matches_iow() {
    // _IOW(0xB9, 0x11, struct rkmem_handle): 8 bytes.
    assert_eq!(RKMEM_IOC_FREE, (1 << 30) | (8 << 16) | (0xB9 << 8) | 0x11);
    assert_eq!(RKMEM_IOC_FREE, 0x4008_b911);
}

#[test]
fn write_and_read_ioctl_numbers_match_iow() {
    // Both _IOW(0xB9, nr, struct rkmem_io): user space writes the descriptor; the data moves
    // through the buffer it points to. 32 bytes.
    assert_eq!(RKMEM_IOC_WRITE, (1 << 30) | (32 << 16) | (0xB9 << 8) | 0x12);
    assert_eq!(RKMEM_IOC_WRITE, 0x4020_b912);
    assert_eq!(RKMEM_IOC_READ, (1 << 30) | (32 << 16) | (0xB9 << 8) | 0x13);
    assert_eq!(RKMEM_IOC_READ, 0x4020_b913);
}

#[test]
fn arena_map_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x14, struct rkmem_arena_map): 40 bytes.
    assert_eq!(
        RKMEM_IOC_ARENA_MAP,
        (3 << 30) | (40 << 16) | (0xB9 << 8) | 0x14
    );
    assert_eq!(RKMEM_IOC_ARENA_MAP, 0xc028_b914);
}

#[test]
fn trim_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x15, struct rkmem_trim): 24 bytes.
    assert_eq!(RKMEM_IOC_TRIM, (3 << 30) | (24 << 16) | (0xB9 << 8) | 0x15);
    assert_eq!(RKMEM_IOC_TRIM, 0xc018_b915);
}

#[test]
fn handle_info_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x16, struct rkmem_handle_info): 112 bytes.
    assert_eq!(core::mem::size_of::<RkmemHandleInfo>(), 112);
    assert_eq!(
        RKMEM_IOC_HANDLE_INFO,
        (3 << 30) | (112 << 16) | (0xB9 << 8) | 0x16
    );
}

#[test]
fn cache_slabs_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x33, struct rkmem_cache_slabs): 56 bytes; entries of 16.
    assert_eq!(core::mem::size_of::<RkmemCacheSlabs>(), 56);
    assert_eq!(core::mem::size_of::<RkmemSlabEntry>(), 16);
    assert_eq!(
        RKMEM_IOC_CACHE_SLABS,
        (3 << 30) | (56 << 16) | (0xB9 << 8) | 0x33
    );
    assert_eq!(RKMEM_FEATURES & RKMEM_FEAT_SLABS, 1 << 8);
}

#[test]
fn routes_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x17, struct rkmem_routes): 176 bytes, six routes of 24.
    assert_eq!(core::mem::size_of::<RkmemRoute>(), 24);
    assert_eq!(core::mem::size_of::<RkmemRoutes>(), 176);
    assert_eq!(
        RKMEM_IOC_ROUTES,
        (3 << 30) | (176 << 16) | (0xB9 << 8) | 0x17
    );
    assert_eq!(RKMEM_FEATURES & RKMEM_FEAT_ROUTES, RKMEM_FEAT_ROUTES);
}

#[test]
fn ioctl_numbers_are_distinct() {
    let all = [
        RKMEM_IOC_VERSION,
        RKMEM_IOC_PAGES_ALLOC,
        RKMEM_IOC_FREE,
        RKMEM_IOC_WRITE,
        RKMEM_IOC_READ,
        RKMEM_IOC_ARENA_MAP,
        RKMEM_IOC_TRIM,
        RKMEM_IOC_SELFTEST,
        RKMEM_IOC_CACHE_CREATE,
        RKMEM_IOC_CACHE_DESTROY,
        RKMEM_IOC_OBJ_ALLOC,
        RKMEM_IOC_HANDLE_INFO,
        RKMEM_IOC_CACHE_SLABS,
        RKMEM_IOC_ROUTES,
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
            // Distinct numbers too, not only distinct words.
            assert_ne!(a & 0xff, b & 0xff);
        }
    }
}

#[test]
fn pages_alloc_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemPagesAlloc, order), 0);
    assert_eq!(offset_of!(RkmemPagesAlloc, flags), 4);
    assert_eq!(offset_of!(RkmemPagesAlloc, npages), 8);
    assert_eq!(offset_of!(RkmemPagesAlloc, reserved), 12);
    assert_eq!(offset_of!(RkmemPagesAlloc, handle), 16);
    assert_eq!(offset_of!(RkmemPagesAlloc, bytes), 24);
    assert_eq!(size_of::<RkmemPagesAlloc>(), 32);
    assert_eq!(align_of::<RkmemPagesAlloc>(), 8);
}

#[test]
fn handle_struct_has_no_holes() {
    use core::mem::{offset_of, size_of};
    assert_eq!(offset_of!(RkmemHandle, handle), 0);
    assert_eq!(size_of::<RkmemHandle>(), 8);
}

#[test]
fn io_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemIo, handle), 0);
    assert_eq!(offset_of!(RkmemIo, offset), 8);
    assert_eq!(offset_of!(RkmemIo, len), 16);
    assert_eq!(offset_of!(RkmemIo, buf), 24);
    assert_eq!(size_of::<RkmemIo>(), 32);
    assert_eq!(align_of::<RkmemIo>(), 8);
}

#[test]
fn block_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemBlock, start), 0);
    assert_eq!(offset_of!(RkmemBlock, pages), 4);
    assert_eq!(offset_of!(RkmemBlock, kind), 8);
    assert_eq!(offset_of!(RkmemBlock, reserved), 12);
    assert_eq!(size_of::<RkmemBlock>(), 16);
    // An array of blocks is what the map writes: no padding between elements.
    assert_eq!(size_of::<[RkmemBlock; 3]>(), 48);
    assert_eq!(align_of::<RkmemBlock>(), 4);
}

#[test]
fn arena_map_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemArenaMap, slot), 0);
    assert_eq!(offset_of!(RkmemArenaMap, max_entries), 4);
    assert_eq!(offset_of!(RkmemArenaMap, entries), 8);
    assert_eq!(offset_of!(RkmemArenaMap, nr_entries), 16);
    assert_eq!(offset_of!(RkmemArenaMap, slots), 20);
    assert_eq!(offset_of!(RkmemArenaMap, present), 24);
    assert_eq!(offset_of!(RkmemArenaMap, slot_pages), 28);
    assert_eq!(offset_of!(RkmemArenaMap, pcp_pages), 32);
    assert_eq!(offset_of!(RkmemArenaMap, reserved), 36);
    assert_eq!(size_of::<RkmemArenaMap>(), 40);
    assert_eq!(align_of::<RkmemArenaMap>(), 8);
}

#[test]
fn trim_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemTrim, flags), 0);
    assert_eq!(offset_of!(RkmemTrim, reserved), 4);
    assert_eq!(offset_of!(RkmemTrim, pcp_pages), 8);
    assert_eq!(offset_of!(RkmemTrim, released_pages), 16);
    assert_eq!(size_of::<RkmemTrim>(), 24);
    assert_eq!(align_of::<RkmemTrim>(), 8);
}

#[test]
fn buddy_abi_constants() {
    assert_eq!(RKMEM_FEAT_PAGES, 2);
    assert_eq!(RKMEM_FEATURES & RKMEM_FEAT_PAGES, RKMEM_FEAT_PAGES);
    assert_eq!(RKMEM_MAX_ORDER, 10);
    assert_eq!(RKMEM_PAGES_EXACT, 1);
    assert_eq!(
        (RKMEM_BLOCK_FREE, RKMEM_BLOCK_USED, RKMEM_BLOCK_EXACT),
        (0, 1, 2)
    );
    // A slot has 2^RKMEM_MAX_ORDER pages, so at most that many blocks.
    assert_eq!(RKMEM_MAP_MAX_ENTRIES, 1 << RKMEM_MAX_ORDER);
    assert_eq!(
        (RKMEM_TRIM_PCP, RKMEM_TRIM_ARENA, RKMEM_TRIM_SLABS),
        (1, 2, 4)
    );
}

#[test]
fn selftest_ioctl_number_matches_ior() {
    // _IOR(0xB9, 0x20, struct rkmem_selftest): 16 bytes (ABI 2; 8 in ABI 1).
    assert_eq!(
        RKMEM_IOC_SELFTEST,
        (2 << 30) | (16 << 16) | (0xB9 << 8) | 0x20
    );
    assert_eq!(RKMEM_IOC_SELFTEST, 0x8010_b920);
}

#[test]
fn selftest_struct_has_no_holes() {
    use core::mem::{offset_of, size_of};
    assert_eq!(offset_of!(RkmemSelftest, passed), 0);
    assert_eq!(offset_of!(RkmemSelftest, failed), 4);
    assert_eq!(offset_of!(RkmemSelftest, arena_bad_frees), 8);
    assert_eq!(size_of::<RkmemSelftest>(), 16);
}

// The slab caches' ioctls.

#[test]
fn cache_create_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x30, struct rkmem_cache_create): 64 bytes.
    assert_eq!(
        RKMEM_IOC_CACHE_CREATE,
        (3 << 30) | (64 << 16) | (0xB9 << 8) | 0x30
    );
    assert_eq!(RKMEM_IOC_CACHE_CREATE, 0xc040_b930);
}

#[test]
fn cache_destroy_ioctl_number_matches_iow() {
    // _IOW(0xB9, 0x31, struct rkmem_cache_id): 8 bytes.
    assert_eq!(
        RKMEM_IOC_CACHE_DESTROY,
        (1 << 30) | (8 << 16) | (0xB9 << 8) | 0x31
    );
    assert_eq!(RKMEM_IOC_CACHE_DESTROY, 0x4008_b931);
}

#[test]
fn obj_alloc_ioctl_number_matches_iowr() {
    // _IOWR(0xB9, 0x32, struct rkmem_obj_alloc): 32 bytes.
    assert_eq!(
        RKMEM_IOC_OBJ_ALLOC,
        (3 << 30) | (32 << 16) | (0xB9 << 8) | 0x32
    );
    assert_eq!(RKMEM_IOC_OBJ_ALLOC, 0xc020_b932);
}

#[test]
fn cache_create_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemCacheCreate, name), 0);
    assert_eq!(offset_of!(RkmemCacheCreate, size), 32);
    assert_eq!(offset_of!(RkmemCacheCreate, align), 36);
    assert_eq!(offset_of!(RkmemCacheCreate, flags), 40);
    assert_eq!(offset_of!(RkmemCacheCreate, ctor_byte), 44);
    assert_eq!(offset_of!(RkmemCacheCreate, id), 48);
    assert_eq!(offset_of!(RkmemCacheCreate, objects_per_slab), 52);
    assert_eq!(offset_of!(RkmemCacheCreate, pages_per_slab), 56);
    assert_eq!(offset_of!(RkmemCacheCreate, objsize), 60);
    assert_eq!(size_of::<RkmemCacheCreate>(), 64);
    assert_eq!(align_of::<RkmemCacheCreate>(), 4);
}

#[test]
fn cache_id_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemCacheId, id), 0);
    assert_eq!(offset_of!(RkmemCacheId, reserved), 4);
    assert_eq!(size_of::<RkmemCacheId>(), 8);
    assert_eq!(align_of::<RkmemCacheId>(), 4);
}

#[test]
fn obj_alloc_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemObjAlloc, cache_id), 0);
    assert_eq!(offset_of!(RkmemObjAlloc, flags), 4);
    assert_eq!(offset_of!(RkmemObjAlloc, size), 8);
    assert_eq!(offset_of!(RkmemObjAlloc, handle), 16);
    assert_eq!(offset_of!(RkmemObjAlloc, bytes), 24);
    assert_eq!(size_of::<RkmemObjAlloc>(), 32);
    assert_eq!(align_of::<RkmemObjAlloc>(), 8);
}

#[test]
fn slab_abi_constants() {
    assert_eq!(RKMEM_FEAT_SLAB, 4);
    assert_eq!(RKMEM_FEATURES & RKMEM_FEAT_SLAB, RKMEM_FEAT_SLAB);
    assert_eq!(RKMEM_CACHE_CTOR, 1);
    assert_eq!(RKMEM_CACHE_SIZE_MAX, 4096);
    // The name field holds the longest name and its NUL.
    assert_eq!(RKMEM_CACHE_NAME_MAX, 31);
    assert_eq!(
        core::mem::size_of::<[u8; RKMEM_CACHE_NAME_MAX + 1]>(),
        core::mem::size_of_val(&RkmemCacheCreate::default().name)
    );
    assert_eq!(RKMEM_RKMALLOC_MAX, 64 << 20);
    assert_eq!(RKMEM_TRIM_SLABS, 4);
    // The kernel's _IOC_SIZE of each new command is its struct's size.
    for (cmd, size) in [
        (RKMEM_IOC_CACHE_CREATE, 64),
        (RKMEM_IOC_CACHE_DESTROY, 8),
        (RKMEM_IOC_OBJ_ALLOC, 32),
    ] {
        assert_eq!((cmd >> 16) & 0x3fff, size);
        assert_eq!((cmd >> 8) & 0xff, RKMEM_IOC_MAGIC);
    }
}

#[test]
fn pool_ioctl_numbers_match_the_kernel_macros() {
    // _IOWR(0xB9, 0x40, struct rkmem_pool_create): 32 bytes.
    assert_eq!(
        RKMEM_IOC_POOL_CREATE,
        (3 << 30) | (32 << 16) | (0xB9 << 8) | 0x40
    );
    assert_eq!(RKMEM_IOC_POOL_CREATE, 0xc020_b940);
    // _IOWR(0xB9, 0x41, struct rkmem_pool_alloc): 24 bytes.
    assert_eq!(
        RKMEM_IOC_POOL_ALLOC,
        (3 << 30) | (24 << 16) | (0xB9 << 8) | 0x41
    );
    assert_eq!(RKMEM_IOC_POOL_ALLOC, 0xc018_b941);
    // _IOW(0xB9, 0x42 / 0x43, struct rkmem_pool_id): 8 bytes.
    assert_eq!(
        RKMEM_IOC_POOL_RESIZE,
        (1 << 30) | (8 << 16) | (0xB9 << 8) | 0x42
    );
    assert_eq!(RKMEM_IOC_POOL_RESIZE, 0x4008_b942);
    assert_eq!(
        RKMEM_IOC_POOL_DESTROY,
        (1 << 30) | (8 << 16) | (0xB9 << 8) | 0x43
    );
    assert_eq!(RKMEM_IOC_POOL_DESTROY, 0x4008_b943);
    let all = [
        RKMEM_IOC_VERSION,
        RKMEM_IOC_PAGES_ALLOC,
        RKMEM_IOC_FREE,
        RKMEM_IOC_WRITE,
        RKMEM_IOC_READ,
        RKMEM_IOC_ARENA_MAP,
        RKMEM_IOC_TRIM,
        RKMEM_IOC_SELFTEST,
        RKMEM_IOC_CACHE_CREATE,
        RKMEM_IOC_CACHE_DESTROY,
        RKMEM_IOC_OBJ_ALLOC,
        RKMEM_IOC_POOL_CREATE,
        RKMEM_IOC_POOL_ALLOC,
        RKMEM_IOC_POOL_RESIZE,
        RKMEM_IOC_POOL_DESTROY,
        RKMEM_IOC_BENCH,
        RKMEM_IOC_COMPACT,
        RKMEM_IOC_STRESS,
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn pool_create_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemPoolCreate, source), 0);
    assert_eq!(offset_of!(RkmemPoolCreate, cache_id), 4);
    assert_eq!(offset_of!(RkmemPoolCreate, size), 8);
    assert_eq!(offset_of!(RkmemPoolCreate, order), 16);
    assert_eq!(offset_of!(RkmemPoolCreate, min_nr), 20);
    assert_eq!(offset_of!(RkmemPoolCreate, flags), 24);
    assert_eq!(offset_of!(RkmemPoolCreate, id), 28);
    assert_eq!(size_of::<RkmemPoolCreate>(), 32);
    assert_eq!(align_of::<RkmemPoolCreate>(), 8);
}

#[test]
fn pool_alloc_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemPoolAlloc, pool_id), 0);
    assert_eq!(offset_of!(RkmemPoolAlloc, flags), 4);
    assert_eq!(offset_of!(RkmemPoolAlloc, handle), 8);
    assert_eq!(offset_of!(RkmemPoolAlloc, bytes), 16);
    assert_eq!(size_of::<RkmemPoolAlloc>(), 24);
    assert_eq!(align_of::<RkmemPoolAlloc>(), 8);
}

#[test]
fn pool_id_struct_has_no_holes() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(offset_of!(RkmemPoolId, pool_id), 0);
    assert_eq!(offset_of!(RkmemPoolId, min_nr), 4);
    assert_eq!(size_of::<RkmemPoolId>(), 8);
    assert_eq!(align_of::<RkmemPoolId>(), 4);
}

#[test]
fn pool_abi_constants() {
    assert_eq!(RKMEM_FEAT_MEMPOOL, 8);
    assert_eq!(RKMEM_FEATURES & RKMEM_FEAT_MEMPOOL, RKMEM_FEAT_MEMPOOL);
    assert_eq!(
        (
            RKMEM_POOL_SRC_CACHE,
            RKMEM_POOL_SRC_RKMALLOC,
            RKMEM_POOL_SRC_PAGES
        ),
        (1, 2, 3)
    );
    assert_eq!(RKMEM_POOL_FAIL_SOURCE, 1);
    assert_eq!(RKMEM_POOL_MAY_SLEEP, 1);
    assert_eq!(RKMEM_POOL_MAX_MIN, 4096);
}
