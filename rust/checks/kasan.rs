// SPDX-License-Identifier: GPL-2.0

//! The `kasan_check` module parameter: proof, in a KASAN kernel, that KASAN watches rkmem's own
//! objects (`rust/glue/kasan.c`). At load the module makes one deliberately bad access to an
//! object of a temporary cache: `1` reads it after its free, `2` writes the byte just past its
//! end. KASAN must report it (`slab-use-after-free`, `slab-out-of-bounds`) in this file's
//! functions; the guest test (`tests/guest/kasancheck.sh`, one boot per check) looks for that
//! report. The access is to mapped memory (a slab page of a live cache), so it cannot fault:
//! without KASAN's poisoning it would go unnoticed, which is what the check disproves.

use crate::slab::Cache;
use kernel::{prelude::*, sync::Arc};

/// Reads the first byte of the freed object at `addr`.
#[inline(never)]
fn read_after_free(addr: usize) -> u8 {
    // SAFETY: `addr` is in a slab page of a cache that is still alive (the caller holds it),
    // mapped in the direct map: the read cannot fault and changes nothing. It is a read of a
    // freed object on purpose: KASAN's report of it is the point.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

/// Writes the byte just past the end of the `size`-byte object at `addr`.
#[inline(never)]
fn write_past_end(addr: usize, size: usize) {
    // SAFETY: the byte lies in the object's slot (the KASAN layout puts a red zone of at least
    // one granule after every object), in a slab page of a live cache: the write cannot fault
    // and no other object is touched. It is out of bounds on purpose: KASAN's report of it is
    // the point.
    unsafe { core::ptr::write_volatile((addr + size) as *mut u8, 0x6b) };
}

/// Runs check `mode` (1: read after free, 2: write past the end).
pub(crate) fn run(mode: u32) -> Result {
    let shared = crate::shared().ok_or(ENODEV)?;
    const SIZE: usize = 117;
    let c = Arc::pin_init(
        Cache::new(
            &shared.arena,
            crate::classes::temporary_cache_id()?,
            b"rkmem-kasan-check",
            SIZE,
            8,
            None,
            false,
            u64::MAX,
        )?,
        GFP_KERNEL,
    )?;
    let o = c.alloc(true)?;
    let addr = o.addr();
    match mode {
        1 => {
            pr_info!("kasan_check=1: reading an object after its free; KASAN must report it\n");
            c.free(o).map_err(|_| EINVAL)?;
            let _ = read_after_free(addr);
        }
        _ => {
            pr_info!(
                "kasan_check=2: writing one byte past an object's end; KASAN must report it\n"
            );
            write_past_end(addr, SIZE);
            c.free(o).map_err(|_| EINVAL)?;
        }
    }
    pr_info!("kasan_check={}: done\n", mode);
    Ok(())
}
