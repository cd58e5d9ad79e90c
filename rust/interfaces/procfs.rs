// SPDX-License-Identifier: GPL-2.0

//! `/proc/rkmem/`: a safe owner of the directory and the dispatch of reads and writes.
//!
//! The procfs calls themselves are in `glue/procfs.c`: procfs is not in this kernel's generated
//! bindings, and a small C object compiled with the kernel's own headers and flags is more
//! robust than a second bindgen run in the module build (see README, "Why C glue for procfs").
//! The text of every file is rendered by `rkcore::text`, tested on the host.

use core::fmt;
use kernel::ffi::{c_char, c_int, c_ulong};
use kernel::{bindings, error::to_result, prelude::*, seq_file::SeqFile, seq_print};

use crate::ffi::{rkmem_proc_dir_create, rkmem_proc_dir_remove, rkmem_proc_file_create};

/// The files of `/proc/rkmem/`. The discriminant is the id the C glue hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum ProcFile {
    /// `/proc/rkmem/stats`: module-wide counters, `/proc/vmstat` style.
    Stats = 0,
    /// `/proc/rkmem/buddyinfo`: free blocks per order, `/proc/buddyinfo` format.
    Buddyinfo = 1,
    /// `/proc/rkmem/extfrag`: fragmentation indices per order and arena totals.
    Extfrag = 2,
    /// `/proc/rkmem/slabinfo`: the slab caches, `/proc/slabinfo` 2.1 format.
    Slabinfo = 3,
    /// `/proc/rkmem/shrinker`: calls of the shrinker and what it freed.
    Shrinker = 4,
    /// `/proc/rkmem/watermarks`: the low/high watermarks (writable: `LOW HIGH`).
    Watermarks = 5,
    /// `/proc/rkmem/mempools`: one row per mempool.
    Mempools = 6,
    /// `/proc/rkmem/compaction`: compaction runs and what they moved and freed.
    Compaction = 7,
    /// `/proc/rkmem/occupancy`: per cache, its slabs by how full they are.
    Occupancy = 8,
    /// `/proc/rkmem/compact`: write-only for root, as `/proc/sys/vm/compact_memory`.
    Compact = 9,
    /// `/proc/rkmem/compaction_proactiveness`: `0..=100`, as `vm.compaction_proactiveness`.
    Proactiveness = 10,
}

impl ProcFile {
    const ALL: [ProcFile; 11] = [
        ProcFile::Proactiveness,
        ProcFile::Compact,
        ProcFile::Occupancy,
        ProcFile::Compaction,
        ProcFile::Mempools,
        ProcFile::Stats,
        ProcFile::Buddyinfo,
        ProcFile::Extfrag,
        ProcFile::Slabinfo,
        ProcFile::Shrinker,
        ProcFile::Watermarks,
    ];

    fn from_id(id: c_ulong) -> Option<ProcFile> {
        Self::ALL.into_iter().find(|f| *f as c_ulong == id)
    }

    fn name(self) -> &'static CStr {
        match self {
            ProcFile::Stats => c"stats",
            ProcFile::Buddyinfo => c"buddyinfo",
            ProcFile::Extfrag => c"extfrag",
            ProcFile::Slabinfo => c"slabinfo",
            ProcFile::Shrinker => c"shrinker",
            ProcFile::Watermarks => c"watermarks",
            ProcFile::Mempools => c"mempools",
            ProcFile::Compaction => c"compaction",
            ProcFile::Occupancy => c"occupancy",
            ProcFile::Compact => c"compact",
            ProcFile::Proactiveness => c"compaction_proactiveness",
        }
    }

    fn mode(self) -> bindings::umode_t {
        match self {
            ProcFile::Stats
            | ProcFile::Buddyinfo
            | ProcFile::Extfrag
            | ProcFile::Shrinker
            | ProcFile::Mempools
            | ProcFile::Compaction
            | ProcFile::Occupancy => 0o444,
            ProcFile::Watermarks | ProcFile::Proactiveness => 0o644,
            ProcFile::Compact => 0o200,
            // Like /proc/slabinfo: root only.
            ProcFile::Slabinfo => 0o400,
        }
    }
}

/// Owner of `/proc/rkmem/` and its files.
///
/// # Invariants
///
/// While a `ProcDir` exists, `/proc/rkmem/` and every file of [`ProcFile::ALL`] exist; they are
/// removed when it is dropped. At most one `ProcDir` exists (the module holds it).
pub(crate) struct ProcDir(());

impl ProcDir {
    /// Creates `/proc/rkmem/` and its files.
    pub(crate) fn new() -> Result<ProcDir> {
        // SAFETY: called once, from module init, before any file exists; the glue keeps the
        // directory entry in its own static.
        to_result(unsafe { rkmem_proc_dir_create() })?;
        // INVARIANT: from here on, dropping `dir` removes the directory and what it holds.
        let dir = ProcDir(());
        for f in ProcFile::ALL {
            // SAFETY: the directory exists (above); `name` is a NUL-terminated static string.
            to_result(unsafe {
                rkmem_proc_file_create(f.name().as_char_ptr(), f.mode(), f as c_ulong)
            })?;
        }
        Ok(dir)
    }
}

impl Drop for ProcDir {
    fn drop(&mut self) {
        // SAFETY: the directory exists by the type invariant; removal waits for callbacks in
        // progress, so no `rkmem_proc_show` runs after this returns.
        unsafe { rkmem_proc_dir_remove() };
    }
}

/// [`fmt::Write`] into a seq_file, so `rkcore::text` renders straight into the read buffer.
struct SeqWriter<'a>(&'a SeqFile);

impl fmt::Write for SeqWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        seq_print!(self.0, "{}", s);
        Ok(())
    }

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        self.0.call_printf(args);
        Ok(())
    }
}

/// Read callback of every `/proc/rkmem` file, called by `glue/procfs.c` from the seq_file show.
#[no_mangle]
extern "C" fn rkmem_proc_show(m: *mut bindings::seq_file, id: c_ulong) -> c_int {
    // SAFETY: the glue passes the seq_file of a read in progress, which only this thread
    // touches until the show callback returns.
    let seq = unsafe { SeqFile::from_raw(m) };
    let mut w = SeqWriter(seq);
    let Some(shared) = crate::shared() else {
        return ENODEV.to_errno();
    };
    let r = match ProcFile::from_id(id) {
        Some(ProcFile::Stats) => crate::stats::show(&mut w, shared),
        Some(ProcFile::Buddyinfo) => shared.arena.show_buddyinfo(&mut w),
        Some(ProcFile::Extfrag) => shared.arena.show_extfrag(&mut w),
        Some(ProcFile::Slabinfo) => {
            crate::classes::show_slabinfo(&mut w, &shared.classes, &shared.caches)
        }
        Some(ProcFile::Shrinker) => crate::reclaim::show_shrinker(&mut w, shared),
        Some(ProcFile::Watermarks) => crate::reclaim::show_watermarks(&mut w, shared),
        Some(ProcFile::Mempools) => crate::mempool::show(&mut w, &shared.pools),
        Some(ProcFile::Compaction) => crate::stats::show_compaction(&mut w),
        Some(ProcFile::Occupancy) => {
            crate::classes::show_occupancy(&mut w, &shared.classes, &shared.caches)
        }
        // Write-only (root can still open it for reading): nothing to show.
        Some(ProcFile::Compact) => Ok(()),
        Some(ProcFile::Proactiveness) => crate::compaction::show_proactiveness(&mut w),
        None => return EINVAL.to_errno(),
    };
    match r {
        Ok(()) => 0,
        Err(_) => EINVAL.to_errno(),
    }
}

/// Write callback of every `/proc/rkmem` file, called by `glue/procfs.c` with a NUL-terminated copy of
/// at most 256 bytes from user space. Files without a write bit never get here (the VFS refuses
/// to open them for writing).
#[no_mangle]
extern "C" fn rkmem_proc_write(id: c_ulong, buf: *const c_char, len: usize) -> isize {
    let Some(shared) = crate::shared() else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: the glue passes a kernel buffer of `len` bytes (at most 256, copied from user
    // space and NUL-terminated), valid for the duration of this call.
    let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let Ok(text) = core::str::from_utf8(bytes) else {
        return EINVAL.to_errno() as isize;
    };
    let r = match ProcFile::from_id(id) {
        Some(ProcFile::Watermarks) => crate::reclaim::write_watermarks(shared, text),
        Some(ProcFile::Compact) => crate::compaction::write_compact(shared, text),
        Some(ProcFile::Proactiveness) => crate::compaction::write_proactiveness(text),
        _ => Err(EINVAL),
    };
    match r {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}
