// SPDX-License-Identifier: GPL-2.0

//! The `kmemleak_check` module parameter: proof, in a kmemleak kernel, that kmemleak knows
//! rkmem's objects (`rust/glue/kmemleak.c`). At load the module takes two objects of the
//! rkmalloc size class of 117 bytes:
//!
//! - the *leaked* one: its address is kept only XOR-ed with a mask (no pointer to it anywhere
//!   kmemleak scans), so kmemleak must report it as an unreferenced object, with a backtrace
//!   in rkmem;
//! - the *holder*: its address is in a static (module data, which kmemleak scans) and its first
//!   word points to a buffer from the host's kmalloc. kmemleak must not report that buffer:
//!   the only pointer to it is inside an rkmem object, seen only if rkmem registered it.
//!
//! The addresses are printed; the guest test (`tests/guest/faults.sh`) scans and reads
//! `/sys/kernel/debug/kmemleak`. Everything is freed at unload ([`release`]).

use crate::rkcore::sizeclass::{self, Route};
use crate::slab::Obj;
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// The object size of the check (its class is rkmalloc's 128-byte one).
const SIZE: usize = 117;
/// Hides the leaked object's address from kmemleak's scan (not a kernel address any more).
const MASK: usize = 0x5a5a_5a5a_5a5a_5a5a;
/// Bytes of the kmalloc'd buffer that only the holder points to.
const BUF: usize = 200;

/// The leaked object's address XOR [`MASK`] (0: none).
static LEAKED: Atomic<usize> = Atomic::new(0);
/// The holder's address (0: none): a plain pointer, in data kmemleak scans.
static HOLDER: Atomic<usize> = Atomic::new(0);

fn class_cache() -> Result<(&'static crate::Shared, &'static crate::slab::Cache)> {
    let shared = crate::shared().ok_or(ENODEV)?;
    let Route::Slab(class) = sizeclass::class_for(SIZE).map_err(|_| EINVAL)? else {
        return Err(EINVAL);
    };
    let c = shared.classes.get(class).ok_or(ENODEV)?;
    Ok((shared, c))
}

/// Runs the check (at load, with `kmemleak_check=1`).
pub(crate) fn run() -> Result {
    let (_, c) = class_cache()?;
    let leaked = c.alloc(true)?.into_raw();
    LEAKED.store(leaked ^ MASK, Relaxed);
    let holder = c.alloc(true)?.into_raw();
    let mut buf = KVec::<u8>::with_capacity(BUF, GFP_KERNEL)?;
    buf.extend_from_slice(b"rkmem-kmemleak-check", GFP_KERNEL)?;
    let (ptr, _, _) = buf.into_raw_parts();
    // SAFETY: `holder` is an object of 128 bytes just allocated and owned by this check; its
    // first word is written once, with the buffer's address (given up above, taken back in
    // `release`).
    unsafe { (holder as *mut usize).write(ptr as usize) };
    HOLDER.store(holder, Relaxed);
    pr_info!(
        "kmemleak_check=1: leaked object {:#x} (size {}), holder {:#x} of kmalloc'd buffer {:#x}\n",
        leaked,
        c.object_size(),
        holder,
        ptr as usize
    );
    Ok(())
}

/// Frees what [`run`] took (at unload; nothing if it did not run).
pub(crate) fn release() {
    let Ok((_, c)) = class_cache() else {
        return;
    };
    let leaked = LEAKED.xchg(0, Relaxed);
    if leaked != 0 {
        // SAFETY: `run` turned the object's only handle into this address (hidden by the mask)
        // and nothing else used it; it is taken back once (the static was cleared above).
        if let Some(o) = unsafe { Obj::from_raw(leaked ^ MASK, c) } {
            let _ = c.free(o);
        }
    }
    let holder = HOLDER.xchg(0, Relaxed);
    if holder != 0 {
        // SAFETY: the holder's first word is the buffer `run` gave up with `into_raw_parts`
        // (length 20, capacity BUF), taken back once here.
        let buf = unsafe {
            let p = (holder as *const usize).read() as *mut u8;
            KVec::from_raw_parts(p, b"rkmem-kmemleak-check".len(), BUF)
        };
        drop(buf);
        // SAFETY: as for the leaked object: `run` gave up the holder's only handle.
        if let Some(o) = unsafe { Obj::from_raw(holder, c) } {
            let _ = c.free(o);
        }
    }
}
