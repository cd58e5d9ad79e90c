// SPDX-License-Identifier: GPL-2.0

//! The buddy allocator: split and coalesce over caller-owned per-page metadata.
//!
//! The arena is a row of *slots*. Slot `i` covers the page indices
//! `[i << max_order, (i + 1) << max_order)`; it is either *absent* (its memory is not taken from
//! the host kernel) or *present*. A slot becomes present as one free block of `max_order`
//! ([`Buddy::add_block`]) and can be given back only when it is wholly free again
//! ([`Buddy::remove_block`]).
//!
//! Inside the present slots, memory is handed out in blocks of `2^order` pages, aligned to their
//! size, exactly like the kernel's page allocator: [`Buddy::alloc`] takes the smallest free block
//! that fits and puts the unused halves of every split on their free lists; [`Buddy::free`]
//! merges the block with its buddy for as long as the buddy is a free block of the same order.
//! [`Buddy::alloc_exact`] and [`Buddy::free_exact`] are the counterparts of the kernel's
//! `alloc_pages_exact()` and `free_pages_exact()`.
//!
//! # Cost
//!
//! Nothing walks a free list. Each block's first page (its *head*) records the block's state and
//! order; every other page is a *tail*. The free lists are intrusive doubly-linked lists
//! threaded through the heads by `u32` page index, so taking a buddy off the middle of its list
//! is O(1). Allocating and freeing cost O(1) per order crossed; one bit per order tells which
//! lists are not empty. Only error paths and [`Buddy::absent_slot`] look further (O(max_order)
//! and O(slots)).
//!
//! # Invariants
//!
//! - Every page of a present slot belongs to exactly one block; the head page of a block is in
//!   state free, used, exact-head or exact-piece, all its other pages are tails.
//! - A free block is on the free list of its order, and only there; no free block has a free
//!   buddy of the same order (merging is eager).
//! - The first page of an absent slot is in state absent, the others are tails.
//! - An exact allocation of `n` pages is laid out as the pieces of `n`'s binary decomposition,
//!   largest first; the first piece's head is the exact-head and records `n`.
//!
//! # Errors
//!
//! Every page index, order and count comes from a caller that may be wrong (or from user space
//! through the ioctls): nothing here panics on them. A refused request changes nothing.

use core::fmt::{self, Write};
use core::ops::DerefMut;

/// The largest `max_order` a [`Buddy`] accepts (the module uses it: 4 MiB of 4 KiB pages).
pub const MAX_ORDER_LIMIT: u32 = 10;

/// Number of orders counted by the statistics, `0..=MAX_ORDER_LIMIT`.
pub const NR_ORDERS: usize = MAX_ORDER_LIMIT as usize + 1;

/// The zone name printed in the `/proc` files.
pub const ZONE_NAME: &str = "rkmem";

/// "No page" in the free-list links.
const NIL: u32 = u32::MAX;

/// What a page's metadata says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum State {
    /// Not the first page of a block (or of an absent slot).
    Tail,
    /// Head of a free block of `order`, on its free list.
    Free,
    /// Head of a block of `order` handed out by [`Buddy::alloc`].
    Used,
    /// Head of the first piece of an exact allocation; `prev` holds its page count.
    ExactHead,
    /// Head of a later piece of an exact allocation.
    ExactPiece,
    /// First page of an absent slot.
    Absent,
    /// Head of a free block of `order` in the isolated slot: on no free list, so nothing
    /// allocates it (see [`Buddy::isolate`]).
    Isolated,
}

/// The allocator's metadata for one page: 12 bytes.
///
/// The caller owns the storage (one entry per page of the whole arena, present or not) and
/// creates it with [`PageMeta::INIT`] or `Default`; [`Buddy::new`] resets every entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageMeta {
    /// Free block: previous head on the free list. Exact-head: the allocation's page count.
    prev: u32,
    /// Free block: next head on the free list.
    next: u32,
    /// Order of the block (or piece) this page heads.
    order: u8,
    state: State,
}

const _: () = assert!(core::mem::size_of::<PageMeta>() == 12);

impl PageMeta {
    /// An entry as storage is created with.
    pub const INIT: PageMeta = PageMeta {
        prev: NIL,
        next: NIL,
        order: 0,
        state: State::Tail,
    };
}

impl Default for PageMeta {
    fn default() -> Self {
        Self::INIT
    }
}

/// Why [`Buddy::new`] refused its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuddyError {
    /// `max_order` is above [`MAX_ORDER_LIMIT`].
    MaxOrderTooLarge {
        /// The value given.
        max_order: u32,
    },
    /// The metadata slice is empty or not a whole number of slots.
    BadLength {
        /// Its length in pages.
        len: usize,
        /// Pages per slot, `1 << max_order`.
        slot_pages: usize,
    },
    /// The metadata slice has more pages than a `u32` index can name.
    TooLarge {
        /// Its length in pages.
        len: usize,
    },
}

impl fmt::Display for BuddyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuddyError::MaxOrderTooLarge { max_order } => {
                write!(f, "max_order {max_order} is above {MAX_ORDER_LIMIT}")
            }
            BuddyError::BadLength { len, slot_pages } => write!(
                f,
                "{len} pages of metadata: must be a non-zero multiple of {slot_pages}"
            ),
            BuddyError::TooLarge { len } => {
                write!(
                    f,
                    "{len} pages of metadata: page indices must fit in 32 bits"
                )
            }
        }
    }
}

/// Why a slot operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// No such slot.
    OutOfRange {
        /// The slot given.
        slot: usize,
        /// Number of slots.
        nr_slots: usize,
    },
    /// [`Buddy::add_block`]: the slot is already present.
    Present {
        /// The slot given.
        slot: usize,
    },
    /// The slot is absent.
    Absent {
        /// The slot given.
        slot: usize,
    },
    /// [`Buddy::remove_block`]: some page of the slot is allocated.
    InUse {
        /// The slot given.
        slot: usize,
    },
    /// [`Buddy::isolate`]: another slot is isolated.
    Busy {
        /// The slot that is.
        isolated: usize,
    },
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SlotError::OutOfRange { slot, nr_slots } => {
                write!(f, "slot {slot} out of range (the arena has {nr_slots})")
            }
            SlotError::Present { slot } => write!(f, "slot {slot} is already present"),
            SlotError::Absent { slot } => write!(f, "slot {slot} is absent"),
            SlotError::InUse { slot } => write!(f, "slot {slot} has allocated pages"),
            SlotError::Busy { isolated } => write!(f, "slot {isolated} is isolated"),
        }
    }
}

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// The order is above the allocator's `max_order`.
    BadOrder {
        /// The order asked for.
        order: u32,
    },
    /// [`Buddy::alloc_exact`]: zero pages, or more than one max-order block.
    BadCount {
        /// The page count asked for.
        npages: usize,
    },
    /// No free block is large enough.
    NoMemory,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AllocError::BadOrder { order } => write!(f, "order {order} is above max_order"),
            AllocError::BadCount { npages } => {
                write!(f, "{npages} pages: must be 1 to one max-order block")
            }
            AllocError::NoMemory => f.write_str("no free block large enough"),
        }
    }
}

/// Why a free was refused. Checked in this order: the order or count, ownership, alignment,
/// then what the page's metadata says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The order is above the allocator's `max_order`.
    BadOrder {
        /// The order given.
        order: u32,
    },
    /// [`Buddy::free_exact`]: zero pages, or more than one max-order block.
    BadCount {
        /// The page count given.
        npages: usize,
    },
    /// The page is outside the arena or in an absent slot.
    NotOwned,
    /// The page is not aligned to `2^order` pages.
    Misaligned,
    /// The page is free, or inside a free block.
    DoubleFree,
    /// The block at this page was allocated with another order.
    WrongOrder {
        /// The order it was allocated with.
        allocated: u32,
    },
    /// The page is inside an allocated block but is not its first page.
    NotAHead,
    /// [`Buddy::free_exact`]: the allocation at this page has another page count.
    WrongCount {
        /// The page count it was allocated with.
        allocated: usize,
    },
    /// [`Buddy::free`] of an allocation made by [`Buddy::alloc_exact`].
    AllocatedExact {
        /// Its page count.
        npages: usize,
    },
    /// [`Buddy::free_exact`] of a block made by [`Buddy::alloc`].
    NotExact {
        /// The order it was allocated with.
        order: u32,
    },
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FreeError::BadOrder { order } => write!(f, "order {order} is above max_order"),
            FreeError::BadCount { npages } => {
                write!(f, "{npages} pages: must be 1 to one max-order block")
            }
            FreeError::NotOwned => f.write_str("page not in the arena"),
            FreeError::Misaligned => f.write_str("page not aligned to the block size"),
            FreeError::DoubleFree => f.write_str("page already free"),
            FreeError::WrongOrder { allocated } => {
                write!(f, "block allocated with order {allocated}")
            }
            FreeError::NotAHead => f.write_str("page is inside a block, not its first page"),
            FreeError::WrongCount { allocated } => {
                write!(f, "allocation has {allocated} pages")
            }
            FreeError::AllocatedExact { npages } => {
                write!(f, "exact allocation of {npages} pages: use free_exact")
            }
            FreeError::NotExact { order } => {
                write!(f, "block of order {order} from alloc: use free")
            }
        }
    }
}

/// What a [`Block`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// A free block (`pages` is a power of two).
    Free,
    /// A block from [`Buddy::alloc`] (`pages` is a power of two).
    Used,
    /// An allocation from [`Buddy::alloc_exact`] (`pages` is its page count).
    Exact,
}

/// One block of a slot, as listed by [`Buddy::blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Index of its first page.
    pub start: usize,
    /// Its length in pages.
    pub pages: usize,
    /// Free, allocated, or an exact allocation.
    pub kind: BlockKind,
}

impl Block {
    /// Whether the block is allocated.
    #[must_use]
    pub fn used(&self) -> bool {
        self.kind != BlockKind::Free
    }
}

/// The blocks of one slot in address order: see [`Buddy::blocks`].
#[derive(Clone, Debug)]
pub struct Blocks<'a> {
    meta: &'a [PageMeta],
    pos: usize,
    end: usize,
}

impl Iterator for Blocks<'_> {
    type Item = Block;

    fn next(&mut self) -> Option<Block> {
        if self.pos >= self.end {
            return None;
        }
        let m = self.meta.get(self.pos)?;
        let (kind, pages) = match m.state {
            State::Free | State::Isolated => (BlockKind::Free, 1usize << m.order),
            State::Used => (BlockKind::Used, 1usize << m.order),
            State::ExactHead => (BlockKind::Exact, m.prev as usize),
            // Not a head: the invariants are broken; stop rather than report nonsense.
            State::Tail | State::ExactPiece | State::Absent => {
                self.pos = self.end;
                return None;
            }
        };
        let block = Block {
            start: self.pos,
            pages,
            kind,
        };
        self.pos += pages.max(1);
        Some(block)
    }
}

/// A buddy allocator over the per-page metadata `S` (a `KVec` in the module, a `Vec` in tests).
///
/// # Invariants
///
/// See the [module documentation](self). Besides: `heads[k]` is the first head of the free list
/// of order `k` (or `NIL`), `nr_free[k]` its length, bit `k` of `nonempty` is set iff it is not
/// empty, `free_pages` is the sum of `nr_free[k] << k`, `present` the number of present slots.
/// `isolated` is the isolated slot (or `NO_SLOT`): its free blocks are in state isolated, on no
/// list, and `isolated_pages` is their sum; every other slot's free blocks are on the lists.
pub struct Buddy<S> {
    meta: S,
    max_order: u32,
    nr_slots: usize,
    heads: [u32; NR_ORDERS],
    nr_free: [usize; NR_ORDERS],
    nonempty: u16,
    free_pages: usize,
    present: usize,
    isolated: usize,
    isolated_pages: usize,
}

/// [`Buddy`]'s `isolated` when no slot is.
const NO_SLOT: usize = usize::MAX;

impl<S: DerefMut<Target = [PageMeta]>> Buddy<S> {
    /// An allocator over `meta`, one entry per page, whose largest blocks have `2^max_order`
    /// pages. `meta.len()` must be a non-zero multiple of `1 << max_order`; every slot starts
    /// absent.
    pub fn new(mut meta: S, max_order: u32) -> Result<Self, BuddyError> {
        if max_order > MAX_ORDER_LIMIT {
            return Err(BuddyError::MaxOrderTooLarge { max_order });
        }
        let slot_pages = 1usize << max_order;
        let len = meta.len();
        if len == 0 || !len.is_multiple_of(slot_pages) {
            return Err(BuddyError::BadLength { len, slot_pages });
        }
        if len > NIL as usize {
            return Err(BuddyError::TooLarge { len });
        }
        for (i, m) in meta.iter_mut().enumerate() {
            *m = PageMeta::INIT;
            if i.is_multiple_of(slot_pages) {
                m.state = State::Absent;
            }
        }
        Ok(Buddy {
            meta,
            max_order,
            nr_slots: len / slot_pages,
            heads: [NIL; NR_ORDERS],
            nr_free: [0; NR_ORDERS],
            nonempty: 0,
            free_pages: 0,
            present: 0,
            isolated: NO_SLOT,
            isolated_pages: 0,
        })
    }

    /// Gives the metadata storage back.
    #[must_use]
    pub fn into_inner(self) -> S {
        self.meta
    }

    /// The order of the largest blocks (one slot).
    #[must_use]
    pub fn max_order(&self) -> u32 {
        self.max_order
    }

    /// Pages per slot, `1 << max_order`.
    #[must_use]
    pub fn slot_pages(&self) -> usize {
        1 << self.max_order
    }

    /// Number of slots, present or absent.
    #[must_use]
    pub fn nr_slots(&self) -> usize {
        self.nr_slots
    }

    /// The slot that holds `page` (present or not), if `page` is in the arena.
    #[must_use]
    pub fn slot_of(&self, page: usize) -> Option<usize> {
        (page < self.meta.len()).then_some(page >> self.max_order)
    }

    /// Whether `slot` exists and is present.
    #[must_use]
    pub fn is_present(&self, slot: usize) -> bool {
        slot < self.nr_slots
            && self
                .meta
                .get(slot << self.max_order)
                .is_some_and(|m| m.state != State::Absent)
    }

    /// Number of present slots.
    #[must_use]
    pub fn nr_present_slots(&self) -> usize {
        self.present
    }

    /// The present slots, in order.
    pub fn present_slots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nr_slots).filter(move |&s| self.is_present(s))
    }

    /// Some absent slot (the lowest), to grow into. O(slots).
    #[must_use]
    pub fn absent_slot(&self) -> Option<usize> {
        (0..self.nr_slots).find(|&s| !self.is_present(s))
    }

    /// Some present slot that is wholly free, to give back to the host. O(1).
    #[must_use]
    pub fn free_block_slot(&self) -> Option<usize> {
        let head = self.heads[self.max_order as usize];
        (head != NIL).then(|| head as usize >> self.max_order)
    }

    /// Makes `slot` present: its pages become one free block of `max_order`.
    pub fn add_block(&mut self, slot: usize) -> Result<(), SlotError> {
        self.check_slot(slot)?;
        if self.is_present(slot) {
            return Err(SlotError::Present { slot });
        }
        self.push(slot << self.max_order, self.max_order);
        self.present += 1;
        Ok(())
    }

    /// Makes `slot` absent again, if it is wholly free; otherwise nothing changes. The
    /// isolated slot may go too (it is then no longer isolated).
    pub fn remove_block(&mut self, slot: usize) -> Result<(), SlotError> {
        self.check_slot(slot)?;
        if !self.is_present(slot) {
            return Err(SlotError::Absent { slot });
        }
        let head = slot << self.max_order;
        let m = self.meta[head];
        if u32::from(m.order) != self.max_order {
            return Err(SlotError::InUse { slot });
        }
        match m.state {
            State::Free => self.unlink(head, self.max_order),
            State::Isolated => {
                self.isolated_pages -= self.slot_pages();
                self.isolated = NO_SLOT;
            }
            _ => return Err(SlotError::InUse { slot }),
        }
        self.meta[head].state = State::Absent;
        self.present -= 1;
        Ok(())
    }

    /// Isolates `slot` for evacuation, as memory offlining isolates a range before migrating
    /// its pages away (`start_isolate_page_range`): its free blocks leave the free lists, so
    /// nothing allocates from it; frees into it still merge but stay off the lists. One slot at
    /// a time: `Busy` while another is isolated. Its free pages stop counting as free.
    pub fn isolate(&mut self, slot: usize) -> Result<(), SlotError> {
        self.check_slot(slot)?;
        if !self.is_present(slot) {
            return Err(SlotError::Absent { slot });
        }
        if self.isolated != NO_SLOT {
            return Err(SlotError::Busy {
                isolated: self.isolated,
            });
        }
        let mut pos = slot << self.max_order;
        let end = pos + self.slot_pages();
        while pos < end {
            // Every head records its block's (or exact piece's) order: step head to head.
            let m = self.meta[pos];
            if m.state == State::Free {
                self.unlink(pos, u32::from(m.order));
                self.meta[pos].state = State::Isolated;
                self.isolated_pages += 1usize << m.order;
            }
            pos += 1usize << m.order;
        }
        self.isolated = slot;
        Ok(())
    }

    /// Ends the isolation (if any): the isolated slot's free blocks go back on their lists.
    pub fn unisolate(&mut self) {
        let slot = core::mem::replace(&mut self.isolated, NO_SLOT);
        if slot == NO_SLOT {
            return;
        }
        let mut pos = slot << self.max_order;
        let end = pos + self.slot_pages();
        while pos < end {
            let m = self.meta[pos];
            if m.state == State::Isolated {
                self.isolated_pages -= 1usize << m.order;
                self.push(pos, u32::from(m.order));
            }
            pos += 1usize << m.order;
        }
    }

    /// The isolated slot, if any.
    #[must_use]
    pub fn isolated_slot(&self) -> Option<usize> {
        (self.isolated != NO_SLOT).then_some(self.isolated)
    }

    /// Free pages of the isolated slot (not counted by [`Buddy::free_pages`]).
    #[must_use]
    pub fn isolated_pages(&self) -> usize {
        self.isolated_pages
    }

    /// Allocates a block of `2^order` pages, aligned to its size; returns its first page.
    pub fn alloc(&mut self, order: u32) -> Result<usize, AllocError> {
        if order > self.max_order {
            return Err(AllocError::BadOrder { order });
        }
        let page = self.take(order)?;
        let m = &mut self.meta[page];
        m.state = State::Used;
        m.order = order as u8;
        Ok(page)
    }

    /// Frees the block of `2^order` pages at `page`, allocated by [`Buddy::alloc`] with that
    /// order, and merges it with its free buddies.
    pub fn free(&mut self, page: usize, order: u32) -> Result<(), FreeError> {
        self.check_free(page, order)?;
        self.release(page, order);
        Ok(())
    }

    /// What [`Buddy::free`] would answer, without freeing.
    pub fn check_free(&self, page: usize, order: u32) -> Result<(), FreeError> {
        if order > self.max_order {
            return Err(FreeError::BadOrder { order });
        }
        self.check_owned(page)?;
        if page & ((1 << order) - 1) != 0 {
            return Err(FreeError::Misaligned);
        }
        let m = self.meta[page];
        match m.state {
            State::Used if u32::from(m.order) == order => Ok(()),
            State::Used => Err(FreeError::WrongOrder {
                allocated: u32::from(m.order),
            }),
            State::ExactHead => Err(FreeError::AllocatedExact {
                npages: m.prev as usize,
            }),
            _ => Err(self.misplaced(page)),
        }
    }

    /// Allocates exactly `npages` contiguous pages, like the kernel's `alloc_pages_exact()`:
    /// takes the `2^k` block that fits, keeps the first `npages` pages and returns the rest to
    /// the free lists (as aligned power-of-two pieces). Returns the first page.
    pub fn alloc_exact(&mut self, npages: usize) -> Result<usize, AllocError> {
        if npages == 0 || npages > self.slot_pages() {
            return Err(AllocError::BadCount { npages });
        }
        let order = usize::BITS - (npages - 1).leading_zeros();
        let page = self.take(order)?;
        // The kept pages: the pieces of `npages`'s binary decomposition, largest first. Each
        // is aligned to its size because the pieces before it are larger powers of two.
        let mut pos = page;
        for bit in (0..=order).rev() {
            if npages & (1 << bit) != 0 {
                self.meta[pos] = PageMeta {
                    prev: if pos == page { npages as u32 } else { NIL },
                    next: NIL,
                    order: bit as u8,
                    state: if pos == page {
                        State::ExactHead
                    } else {
                        State::ExactPiece
                    },
                };
                pos += 1 << bit;
            }
        }
        // The unused tail: pieces of strictly increasing size, each aligned to its size. None
        // has a free buddy (its buddy overlaps the kept pages or a smaller piece): no merging.
        let end = page + (1 << order);
        while pos < end {
            let piece = (pos - page).trailing_zeros();
            self.push(pos, piece);
            pos += 1 << piece;
        }
        Ok(page)
    }

    /// Frees the `npages` pages at `page` allocated by [`Buddy::alloc_exact`], merging them with
    /// their free buddies.
    pub fn free_exact(&mut self, page: usize, npages: usize) -> Result<(), FreeError> {
        self.check_free_exact(page, npages)?;
        let mut pos = page;
        for bit in (0..=self.max_order).rev() {
            if npages & (1 << bit) != 0 {
                self.release(pos, bit);
                pos += 1 << bit;
            }
        }
        Ok(())
    }

    /// What [`Buddy::free_exact`] would answer, without freeing.
    pub fn check_free_exact(&self, page: usize, npages: usize) -> Result<(), FreeError> {
        if npages == 0 || npages > self.slot_pages() {
            return Err(FreeError::BadCount { npages });
        }
        self.check_owned(page)?;
        let m = self.meta[page];
        match m.state {
            State::ExactHead if m.prev as usize == npages => Ok(()),
            State::ExactHead => Err(FreeError::WrongCount {
                allocated: m.prev as usize,
            }),
            State::Used => Err(FreeError::NotExact {
                order: u32::from(m.order),
            }),
            _ => Err(self.misplaced(page)),
        }
    }

    /// Adds to `out[slot]` the pages of every free block of that slot (`out` has an entry per
    /// slot; missing entries are skipped). O(free blocks): it walks the free lists.
    pub fn add_free_pages_by_slot(&self, out: &mut [usize]) {
        for order in 0..=self.max_order {
            let mut head = self.heads[order as usize];
            // A list has nr_free[order] heads; the bound also ends a corrupted (cyclic) list.
            for _ in 0..self.nr_free[order as usize] {
                if head == NIL {
                    break;
                }
                let page = head as usize;
                if let Some(o) = out.get_mut(page >> self.max_order) {
                    *o += 1usize << order;
                }
                head = self.meta.get(page).map_or(NIL, |m| m.next);
            }
        }
    }

    /// Number of free blocks of `order` (0 above `max_order`).
    #[must_use]
    pub fn nr_free(&self, order: u32) -> usize {
        self.nr_free.get(order as usize).copied().unwrap_or(0)
    }

    /// Number of free blocks of each order `0..NR_ORDERS` (0 above `max_order`).
    #[must_use]
    pub fn nr_free_all(&self) -> [usize; NR_ORDERS] {
        self.nr_free
    }

    /// Number of free blocks of each order `0..=max_order`.
    #[must_use]
    pub fn nr_free_orders(&self) -> &[usize] {
        &self.nr_free[..=self.max_order as usize]
    }

    /// Number of free pages.
    #[must_use]
    pub fn free_pages(&self) -> usize {
        self.free_pages
    }

    /// Number of pages in present slots.
    #[must_use]
    pub fn present_pages(&self) -> usize {
        self.present << self.max_order
    }

    /// Number of allocated pages.
    #[must_use]
    pub fn used_pages(&self) -> usize {
        self.present_pages() - self.free_pages - self.isolated_pages
    }

    /// The order of the largest free block, if any page is free.
    #[must_use]
    pub fn largest_free_order(&self) -> Option<u32> {
        (self.nonempty != 0).then(|| 15 - self.nonempty.leading_zeros())
    }

    /// The blocks of `slot` in address order (no allocation), to draw the slot.
    pub fn blocks(&self, slot: usize) -> Result<Blocks<'_>, SlotError> {
        self.check_slot(slot)?;
        if !self.is_present(slot) {
            return Err(SlotError::Absent { slot });
        }
        let pos = slot << self.max_order;
        Ok(Blocks {
            meta: &self.meta,
            pos,
            end: pos + self.slot_pages(),
        })
    }

    /// Writes the `/proc/buddyinfo` line of the present slots: see [`write_buddyinfo`].
    pub fn write_buddyinfo<W: Write>(&self, w: &mut W) -> fmt::Result {
        write_buddyinfo(w, self.nr_free_orders())
    }

    fn check_slot(&self, slot: usize) -> Result<(), SlotError> {
        if slot >= self.nr_slots {
            return Err(SlotError::OutOfRange {
                slot,
                nr_slots: self.nr_slots,
            });
        }
        Ok(())
    }

    fn check_owned(&self, page: usize) -> Result<(), FreeError> {
        match self.slot_of(page) {
            Some(slot) if self.is_present(slot) => Ok(()),
            _ => Err(FreeError::NotOwned),
        }
    }

    /// The error for freeing `page` (in a present slot) that is not the head of an allocation
    /// of the kind asked for: the head of, or a page inside, a free block or another allocation.
    fn misplaced(&self, page: usize) -> FreeError {
        // The block holding `page` is headed by the first non-tail page met when aligning
        // `page` down to growing powers of two: aligned-down pages strictly inside the block are
        // tails, and the block's head is aligned to its size.
        let state = (0..=self.max_order)
            .map(|k| self.meta.get(page & !((1 << k) - 1)))
            .find_map(|m| m.filter(|m| m.state != State::Tail))
            .map_or(State::Tail, |m| m.state);
        match state {
            State::Free | State::Isolated => FreeError::DoubleFree,
            State::Absent => FreeError::NotOwned,
            _ => FreeError::NotAHead,
        }
    }

    /// Takes a free block of `2^order` pages (order ≤ max_order) off the free lists, splitting
    /// the smallest free block that fits. Its head is left for the caller to mark.
    #[inline]
    fn take(&mut self, order: u32) -> Result<usize, AllocError> {
        let fits = self.nonempty >> order;
        if fits == 0 {
            return Err(AllocError::NoMemory);
        }
        let mut k = order + fits.trailing_zeros();
        let page = self.heads[k as usize] as usize;
        self.unlink(page, k);
        while k > order {
            k -= 1;
            self.push(page + (1 << k), k);
        }
        Ok(page)
    }

    /// Returns the allocated block (or piece) of `2^order` pages at `page` to the free lists,
    /// merging it with its buddy while the buddy is a free block of the same order.
    #[inline]
    fn release(&mut self, page: usize, order: u32) {
        self.meta[page].state = State::Tail;
        let mut head = page;
        let mut k = order;
        // In the isolated slot every free block is isolated; elsewhere none is.
        let isolated = page >> self.max_order == self.isolated;
        let free = if isolated {
            State::Isolated
        } else {
            State::Free
        };
        while k < self.max_order {
            let buddy = head ^ (1 << k);
            let b = self.meta[buddy];
            if b.state != free || u32::from(b.order) != k {
                break;
            }
            if isolated {
                self.isolated_pages -= 1 << k;
            } else {
                self.unlink(buddy, k);
            }
            self.meta[buddy].state = State::Tail;
            head &= !(1 << k);
            k += 1;
        }
        if isolated {
            self.meta[head] = PageMeta {
                prev: NIL,
                next: NIL,
                order: k as u8,
                state: State::Isolated,
            };
            self.isolated_pages += 1 << k;
        } else {
            self.push(head, k);
        }
    }

    /// Makes `page` the head of a free block of `order` at the front of its list.
    #[inline]
    fn push(&mut self, page: usize, order: u32) {
        let k = order as usize;
        let next = self.heads[k];
        self.meta[page] = PageMeta {
            prev: NIL,
            next,
            order: order as u8,
            state: State::Free,
        };
        if next != NIL {
            self.meta[next as usize].prev = page as u32;
        }
        self.heads[k] = page as u32;
        self.nr_free[k] += 1;
        self.nonempty |= 1 << k;
        self.free_pages += 1 << order;
    }

    /// Takes the free block of `order` headed by `page` off its list (its state is unchanged).
    #[inline]
    fn unlink(&mut self, page: usize, order: u32) {
        let k = order as usize;
        let PageMeta { prev, next, .. } = self.meta[page];
        if prev == NIL {
            self.heads[k] = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NIL {
            self.meta[next as usize].prev = prev;
        }
        self.nr_free[k] -= 1;
        if self.heads[k] == NIL {
            self.nonempty &= !(1 << k);
        }
        self.free_pages -= 1 << order;
    }
}

/// Writes one `/proc/buddyinfo` line in the kernel's exact format (`frag_show_print` in
/// mm/vmstat.c): `"Node %d, zone %8s "`, then `"%6lu "` per order, then a newline.
///
/// ```text
/// Node 0, zone    rkmem      3      0      1      0      1 \n
/// ```
///
/// (`\n` marks the end of the line: there is a space before it, as in the kernel's.)
pub fn write_buddyinfo<W: Write>(w: &mut W, nr_free: &[usize]) -> fmt::Result {
    write!(w, "Node 0, zone {:>8} ", ZONE_NAME)?;
    for n in nr_free {
        write!(w, "{n:6} ")?;
    }
    w.write_char('\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::format;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    fn buddy(max_order: u32, slots: usize) -> Buddy<Vec<PageMeta>> {
        Buddy::new(vec![PageMeta::INIT; slots << max_order], max_order).unwrap()
    }

    fn all_blocks(b: &Buddy<Vec<PageMeta>>) -> Vec<Block> {
        b.present_slots()
            .flat_map(|s| b.blocks(s).unwrap())
            .collect()
    }

    fn free_block(start: usize, pages: usize) -> Block {
        Block {
            start,
            pages,
            kind: BlockKind::Free,
        }
    }

    #[test]
    fn free_pages_by_slot_match_the_blocks() {
        let mut b = buddy(4, 3);
        b.add_block(0).unwrap();
        b.add_block(2).unwrap();
        let a = b.alloc(2).unwrap();
        let c = b.alloc(0).unwrap();
        let mut out = vec![0usize; 3];
        b.add_free_pages_by_slot(&mut out);
        let mut want = vec![0usize; 3];
        for blk in all_blocks(&b) {
            if blk.kind == BlockKind::Free {
                want[blk.start >> 4] += blk.pages;
            }
        }
        assert_eq!(out, want);
        assert_eq!(out.iter().sum::<usize>(), b.free_pages());
        assert_eq!(out[1], 0, "an absent slot has no free pages");
        // A short buffer: the slots it has no entry for are skipped.
        let mut short = vec![0usize; 1];
        b.add_free_pages_by_slot(&mut short);
        assert_eq!(short[0], out[0]);
        b.free(a, 2).unwrap();
        b.free(c, 0).unwrap();
    }

    #[test]
    fn page_meta_is_12_bytes() {
        assert_eq!(core::mem::size_of::<PageMeta>(), 12);
    }

    #[test]
    fn new_checks_its_storage() {
        let e = Buddy::new(vec![PageMeta::INIT; 16], 11).err();
        assert_eq!(e, Some(BuddyError::MaxOrderTooLarge { max_order: 11 }));
        let e = Buddy::new(vec![PageMeta::INIT; 24], 4).err();
        assert_eq!(
            e,
            Some(BuddyError::BadLength {
                len: 24,
                slot_pages: 16
            })
        );
        let e = Buddy::new(Vec::new(), 0).err();
        assert_eq!(
            e,
            Some(BuddyError::BadLength {
                len: 0,
                slot_pages: 1
            })
        );
        let mut b = buddy(4, 3);
        assert_eq!(b.nr_slots(), 3);
        assert_eq!(b.nr_present_slots(), 0);
        assert_eq!(b.present_pages(), 0);
        assert_eq!(b.free_pages(), 0);
        assert_eq!(b.absent_slot(), Some(0));
        assert_eq!(b.free_block_slot(), None);
        assert_eq!(b.largest_free_order(), None);
        assert_eq!(b.alloc(0), Err(AllocError::NoMemory));
        assert_eq!(
            BuddyError::BadLength {
                len: 24,
                slot_pages: 16
            }
            .to_string(),
            "24 pages of metadata: must be a non-zero multiple of 16"
        );
    }

    #[test]
    fn new_resets_reused_storage() {
        let mut b = buddy(2, 2);
        b.add_block(1).unwrap();
        b.alloc(0).unwrap();
        let b = Buddy::new(b.into_inner(), 2).unwrap();
        assert_eq!(b.nr_present_slots(), 0);
        assert_eq!(b.blocks(1).err(), Some(SlotError::Absent { slot: 1 }));
    }

    #[test]
    fn slots_grow_and_shrink() {
        let mut b = buddy(3, 3);
        assert_eq!(
            b.add_block(3),
            Err(SlotError::OutOfRange {
                slot: 3,
                nr_slots: 3
            })
        );
        b.add_block(1).unwrap();
        assert_eq!(b.add_block(1), Err(SlotError::Present { slot: 1 }));
        assert_eq!(b.absent_slot(), Some(0));
        assert_eq!(b.free_block_slot(), Some(1));
        assert_eq!(b.present_pages(), 8);
        assert_eq!(b.largest_free_order(), Some(3));
        let p = b.alloc(0).unwrap();
        assert_eq!(p, 8);
        assert_eq!(b.free_block_slot(), None);
        assert_eq!(b.remove_block(1), Err(SlotError::InUse { slot: 1 }));
        assert_eq!(b.remove_block(0), Err(SlotError::Absent { slot: 0 }));
        b.add_block(2).unwrap();
        assert_eq!(b.free_block_slot(), Some(2));
        assert_eq!(b.present_slots().collect::<Vec<_>>(), [1, 2]);
        b.free(p, 0).unwrap();
        b.remove_block(2).unwrap();
        b.remove_block(1).unwrap();
        assert_eq!(b.present_pages(), 0);
        assert_eq!(b.free_pages(), 0);
        assert_eq!(b.nr_free_all(), [0; NR_ORDERS]);
        assert_eq!(b.free(p, 0), Err(FreeError::NotOwned));
    }

    #[test]
    fn every_free_error() {
        let mut b = buddy(3, 2);
        b.add_block(0).unwrap();
        let a = b.alloc(1).unwrap(); // pages 0-1
        let e = b.alloc_exact(3).unwrap(); // pages 4-6, 7 free
        assert_eq!((a, e), (0, 4));
        assert_eq!(b.free(a, 4), Err(FreeError::BadOrder { order: 4 }));
        assert_eq!(b.free(8, 0), Err(FreeError::NotOwned));
        assert_eq!(b.free(usize::MAX, 0), Err(FreeError::NotOwned));
        assert_eq!(b.free(1, 1), Err(FreeError::Misaligned));
        assert_eq!(b.free(a, 0), Err(FreeError::WrongOrder { allocated: 1 }));
        assert_eq!(b.free(1, 0), Err(FreeError::NotAHead));
        assert_eq!(b.free(2, 1), Err(FreeError::DoubleFree));
        assert_eq!(b.free(3, 0), Err(FreeError::DoubleFree));
        assert_eq!(b.free(7, 0), Err(FreeError::DoubleFree));
        assert_eq!(b.free(e, 2), Err(FreeError::AllocatedExact { npages: 3 }));
        assert_eq!(b.free(6, 0), Err(FreeError::NotAHead));
        assert_eq!(b.free(5, 0), Err(FreeError::NotAHead));
        assert_eq!(b.free_exact(e, 0), Err(FreeError::BadCount { npages: 0 }));
        assert_eq!(b.free_exact(e, 9), Err(FreeError::BadCount { npages: 9 }));
        assert_eq!(
            b.free_exact(e, 4),
            Err(FreeError::WrongCount { allocated: 3 })
        );
        assert_eq!(b.free_exact(a, 2), Err(FreeError::NotExact { order: 1 }));
        assert_eq!(b.free_exact(6, 1), Err(FreeError::NotAHead));
        assert_eq!(b.free_exact(7, 1), Err(FreeError::DoubleFree));
        assert_eq!(b.free_exact(9, 1), Err(FreeError::NotOwned));
        assert_eq!(b.alloc(4), Err(AllocError::BadOrder { order: 4 }));
        assert_eq!(b.alloc_exact(0), Err(AllocError::BadCount { npages: 0 }));
        assert_eq!(b.alloc_exact(9), Err(AllocError::BadCount { npages: 9 }));
        b.free_exact(e, 3).unwrap();
        b.free(a, 1).unwrap();
        assert_eq!(all_blocks(&b), [free_block(0, 8)]);
        assert_eq!(
            FreeError::WrongOrder { allocated: 1 }.to_string(),
            "block allocated with order 1"
        );
    }

    #[test]
    fn exact_keeps_only_what_was_asked() {
        let mut b = buddy(4, 1);
        b.add_block(0).unwrap();
        let p = b.alloc_exact(5).unwrap();
        assert_eq!(p, 0);
        assert_eq!(
            all_blocks(&b),
            [
                Block {
                    start: 0,
                    pages: 5,
                    kind: BlockKind::Exact
                },
                free_block(5, 1),
                free_block(6, 2),
                free_block(8, 8),
            ]
        );
        assert_eq!(b.free_pages(), 11);
        // The freed tail is usable: an order-1 block comes from it, not from the order-3 block.
        assert_eq!(b.alloc(1), Ok(6));
        let q = b.alloc_exact(16);
        assert_eq!(q, Err(AllocError::NoMemory));
        let q = b.alloc_exact(7).unwrap();
        assert_eq!(q, 8);
        assert_eq!(b.free_pages(), 2);
        b.free_exact(p, 5).unwrap();
        b.free(6, 1).unwrap();
        b.free_exact(q, 7).unwrap();
        assert_eq!(all_blocks(&b), [free_block(0, 16)]);
    }

    #[test]
    fn alloc_takes_the_smallest_fit_and_splits_low_first() {
        let mut b = buddy(3, 1);
        b.add_block(0).unwrap();
        assert_eq!(b.alloc(0), Ok(0));
        assert_eq!(b.nr_free_orders(), [1, 1, 1, 0]);
        assert_eq!(b.alloc(1), Ok(2));
        assert_eq!(b.alloc(0), Ok(1));
        assert_eq!(b.nr_free_orders(), [0, 0, 1, 0]);
        assert_eq!(b.largest_free_order(), Some(2));
        assert_eq!(b.alloc(3), Err(AllocError::NoMemory));
        assert_eq!(b.alloc(2), Ok(4));
        assert_eq!(b.alloc(0), Err(AllocError::NoMemory));
        assert_eq!(b.largest_free_order(), None);
        assert_eq!(b.used_pages(), 8);
    }

    /// Draws slot 0 the way the textbook does. Used blocks show their name; a block shows its
    /// size (`A-64K`) the first time its name appears if a neighbour is free, so that the split
    /// that made it can be read off; a block wedged between allocated blocks shows no size
    /// (`A|C|B`). Free blocks show their size.
    fn draw(b: &Buddy<Vec<PageMeta>>, names: &BTreeMap<usize, char>, seen: &mut String) -> String {
        let blocks: Vec<Block> = b.blocks(0).unwrap().collect();
        let size = |blk: &Block| format!("{}K", blk.pages * 64);
        let mut parts = Vec::new();
        for (i, blk) in blocks.iter().enumerate() {
            if !blk.used() {
                parts.push(size(blk));
                continue;
            }
            let name = names[&blk.start];
            let free_left = i > 0 && !blocks[i - 1].used();
            let free_right = blocks.get(i + 1).is_some_and(|n| !n.used());
            if !seen.contains(name) && (free_left || free_right) {
                parts.push(format!("{name}-{}", size(blk)));
            } else {
                parts.push(name.to_string());
            }
            seen.push(name);
        }
        parts.join("|")
    }

    #[test]
    fn textbook_split_and_coalesce() {
        // 1024K with 64K minimum blocks: 16 "pages" of 64K, max_order 4, one slot.
        let mut b = buddy(4, 1);
        b.add_block(0).unwrap();
        let order_for = |kib: usize| (kib.div_ceil(64)).next_power_of_two().trailing_zeros();
        let mut names = BTreeMap::new();
        let mut at = BTreeMap::new();
        let mut seen = String::new();
        let mut steps = Vec::new();
        for (name, kib) in [('A', 34), ('B', 66), ('C', 35), ('D', 67)] {
            let order = order_for(kib);
            let p = b.alloc(order).unwrap();
            names.insert(p, name);
            at.insert(name, (p, order));
            steps.push(draw(&b, &names, &mut seen));
        }
        for name in ['C', 'A', 'B', 'D'] {
            let (p, order) = at[&name];
            b.free(p, order).unwrap();
            names.remove(&p);
            steps.push(draw(&b, &names, &mut seen));
        }
        assert_eq!(
            steps,
            [
                "A-64K|64K|128K|256K|512K",
                "A|64K|B-128K|256K|512K",
                "A|C|B|256K|512K",
                "A|C|B|D-128K|128K|512K",
                "A|64K|B|D|128K|512K",
                "128K|B|D|128K|512K",
                "256K|D|128K|512K",
                "1024K",
            ]
        );
    }

    #[test]
    fn buddyinfo_is_the_kernels_format() {
        let mut b = buddy(10, 2);
        let mut s = String::new();
        b.write_buddyinfo(&mut s).unwrap();
        assert_eq!(
            s,
            "Node 0, zone    rkmem      0      0      0      0      0      0      0      0      0      0      0 \n"
        );
        b.add_block(0).unwrap();
        b.add_block(1).unwrap();
        b.alloc(0).unwrap();
        s.clear();
        b.write_buddyinfo(&mut s).unwrap();
        assert_eq!(
            s,
            "Node 0, zone    rkmem      1      1      1      1      1      1      1      1      1      1      1 \n"
        );
        s.clear();
        write_buddyinfo(&mut s, &[1234567, 0, 3]).unwrap();
        assert_eq!(s, "Node 0, zone    rkmem 1234567      0      3 \n");
    }

    #[test]
    fn an_isolated_slot_is_not_allocated_from_and_empties_into_one_block() {
        let mut b = buddy(4, 2);
        // Added last, slot 0 heads the free list.
        b.add_block(1).unwrap();
        b.add_block(0).unwrap();
        let a = b.alloc(2).unwrap();
        let e = b.alloc_exact(3).unwrap();
        assert_eq!(b.slot_of(a), Some(0));
        assert_eq!(b.slot_of(e), Some(0));
        b.isolate(0).unwrap();
        assert_eq!(b.isolate(1), Err(SlotError::Busy { isolated: 0 }));
        // The isolated slot's free pages are neither free nor used.
        assert_eq!(b.isolated_pages(), 16 - 4 - 3);
        assert_eq!(b.free_pages(), 16);
        assert_eq!(b.used_pages(), 7);
        // Allocations come from slot 1 only, and fail once it is full.
        let x = b.alloc(4).unwrap();
        assert_eq!(b.slot_of(x), Some(1));
        assert_eq!(b.alloc(0), Err(AllocError::NoMemory));
        // Frees into the isolated slot merge but stay isolated; a double free is still one.
        b.free(a, 2).unwrap();
        assert_eq!(b.free(a, 2), Err(FreeError::DoubleFree));
        b.free_exact(e, 3).unwrap();
        assert_eq!(b.isolated_pages(), 16);
        assert_eq!(b.free_pages(), 0);
        assert!(b.blocks(0).unwrap().eq([free_block(0, 16)]));
        assert_eq!(
            b.free_block_slot(),
            None,
            "an isolated slot is not on the lists"
        );
        // Wholly free: it can go back to the host, and the isolation ends with it.
        b.remove_block(0).unwrap();
        assert_eq!(b.isolated_slot(), None);
        assert_eq!(b.isolated_pages(), 0);
        b.add_block(0).unwrap();
        assert_eq!(b.free_block_slot(), Some(0));
        // Unisolating puts the free blocks back on their lists.
        let y = b.alloc(3).unwrap();
        b.isolate(0).unwrap();
        assert_eq!(b.alloc(0), Err(AllocError::NoMemory));
        b.unisolate();
        assert_eq!(b.isolated_slot(), None);
        assert_eq!(b.free_pages(), 8);
        b.free(y, 3).unwrap();
        b.free(x, 4).unwrap();
        assert_eq!(b.free_pages(), 32);
    }

    // ----- Property tests against a reference model -----

    const MAX: u32 = 3;
    const SLOTS: usize = 4;
    const SLOT_PAGES: usize = 1 << MAX;
    const PAGES: usize = SLOTS * SLOT_PAGES;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        Order(u32),
        Exact(usize),
    }

    impl Kind {
        fn pages(self) -> usize {
            match self {
                Kind::Order(k) => 1 << k,
                Kind::Exact(n) => n,
            }
        }
    }

    /// The obvious allocator: who owns each page.
    #[derive(Default)]
    struct Model {
        present: [bool; SLOTS],
        /// Page -> first page of the allocation that holds it.
        owner: BTreeMap<usize, usize>,
        live: BTreeMap<usize, Kind>,
        /// The isolated slot: nothing is allocated from it.
        isolated: Option<usize>,
    }

    impl Model {
        fn owned(&self, page: usize) -> bool {
            page < PAGES && self.present[page / SLOT_PAGES]
        }

        /// Whether some aligned run of `2^order` pages is wholly free.
        fn fits(&self, order: u32) -> bool {
            let n = 1 << order;
            (0..PAGES).step_by(n).any(|s| {
                self.owned(s)
                    && self.isolated != Some(s / SLOT_PAGES)
                    && (s..s + n).all(|p| !self.owner.contains_key(&p))
            })
        }

        fn take(&mut self, start: usize, kind: Kind) {
            assert_ne!(
                self.isolated,
                Some(start / SLOT_PAGES),
                "allocated from the isolated slot"
            );
            for p in start..start + kind.pages() {
                assert!(self.owned(p), "page {p} not in a present slot");
                assert_eq!(
                    self.owner.insert(p, start),
                    None,
                    "page {p} handed out twice"
                );
            }
            self.live.insert(start, kind);
        }

        fn give_back(&mut self, start: usize) {
            let kind = self.live.remove(&start).unwrap();
            for p in start..start + kind.pages() {
                self.owner.remove(&p);
            }
        }

        fn expect_free(&self, page: usize, order: u32) -> Result<(), FreeError> {
            if order > MAX {
                return Err(FreeError::BadOrder { order });
            }
            if !self.owned(page) {
                return Err(FreeError::NotOwned);
            }
            if !page.is_multiple_of(1 << order) {
                return Err(FreeError::Misaligned);
            }
            match (self.owner.get(&page), self.live.get(&page)) {
                (None, _) => Err(FreeError::DoubleFree),
                (_, Some(&Kind::Order(k))) if k == order => Ok(()),
                (_, Some(&Kind::Order(k))) => Err(FreeError::WrongOrder { allocated: k }),
                (_, Some(&Kind::Exact(n))) => Err(FreeError::AllocatedExact { npages: n }),
                (Some(_), None) => Err(FreeError::NotAHead),
            }
        }

        fn expect_free_exact(&self, page: usize, npages: usize) -> Result<(), FreeError> {
            if npages == 0 || npages > SLOT_PAGES {
                return Err(FreeError::BadCount { npages });
            }
            if !self.owned(page) {
                return Err(FreeError::NotOwned);
            }
            match (self.owner.get(&page), self.live.get(&page)) {
                (None, _) => Err(FreeError::DoubleFree),
                (_, Some(&Kind::Exact(n))) if n == npages => Ok(()),
                (_, Some(&Kind::Exact(n))) => Err(FreeError::WrongCount { allocated: n }),
                (_, Some(&Kind::Order(k))) => Err(FreeError::NotExact { order: k }),
                (Some(_), None) => Err(FreeError::NotAHead),
            }
        }
    }

    /// Everything observable, to check that a refused request changed nothing.
    fn snapshot(b: &Buddy<Vec<PageMeta>>) -> (Vec<Block>, [usize; NR_ORDERS], usize, usize) {
        (
            all_blocks(b),
            b.nr_free_all(),
            b.free_pages(),
            b.present_pages(),
        )
    }

    /// Checks the allocator against the model and its own invariants, recounting from the
    /// metadata.
    fn check(b: &Buddy<Vec<PageMeta>>, m: &Model) {
        let mut nr_free = [0usize; NR_ORDERS];
        let mut isolated_pages = 0;
        let mut used = BTreeMap::new();
        for slot in 0..SLOTS {
            assert_eq!(b.is_present(slot), m.present[slot]);
            let Ok(blocks) = b.blocks(slot) else {
                assert!(!m.present[slot]);
                continue;
            };
            let blocks: Vec<Block> = blocks.collect();
            let mut pos = slot * SLOT_PAGES;
            for blk in &blocks {
                assert_eq!(blk.start, pos, "blocks tile the slot");
                pos += blk.pages;
                let aligned_to = blk.pages.next_power_of_two();
                assert_eq!(blk.start % aligned_to, 0, "{blk:?} misaligned");
                match blk.kind {
                    BlockKind::Free => {
                        assert!(blk.pages.is_power_of_two());
                        let order = blk.pages.trailing_zeros();
                        if m.isolated == Some(slot) {
                            isolated_pages += blk.pages;
                        } else {
                            nr_free[order as usize] += 1;
                        }
                        for p in blk.start..blk.start + blk.pages {
                            assert!(!m.owner.contains_key(&p), "free page {p} is owned");
                        }
                        if order < MAX {
                            let buddy = blk.start ^ blk.pages;
                            assert!(
                                !blocks.contains(&free_block(buddy, blk.pages)),
                                "{blk:?} and its buddy are both free"
                            );
                        }
                    }
                    BlockKind::Used => {
                        assert!(blk.pages.is_power_of_two());
                        let k = blk.pages.trailing_zeros();
                        used.insert(blk.start, Kind::Order(k));
                    }
                    BlockKind::Exact => {
                        used.insert(blk.start, Kind::Exact(blk.pages));
                    }
                }
            }
            assert_eq!(pos, (slot + 1) * SLOT_PAGES, "blocks tile the slot");
        }
        assert_eq!(used, m.live);
        assert_eq!(b.nr_free_all(), nr_free);
        let free: usize = (0..NR_ORDERS).map(|k| nr_free[k] << k).sum();
        assert_eq!(b.free_pages(), free);
        assert_eq!(b.isolated_slot(), m.isolated);
        assert_eq!(b.isolated_pages(), isolated_pages);
        let present = m.present.iter().filter(|&&p| p).count();
        assert_eq!(b.present_pages(), present * SLOT_PAGES);
        assert_eq!(free + isolated_pages + m.owner.len(), b.present_pages());
        assert_eq!(b.used_pages(), m.owner.len());
        let largest = (0..NR_ORDERS).rev().find(|&k| nr_free[k] != 0);
        assert_eq!(b.largest_free_order(), largest.map(|k| k as u32));
        match b.free_block_slot() {
            Some(s) => assert!(b
                .blocks(s)
                .unwrap()
                .eq([free_block(s * SLOT_PAGES, SLOT_PAGES)])),
            None => assert_eq!(nr_free[MAX as usize], 0),
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(u32),
        AllocExact(usize),
        /// Free the n-th live allocation the right way.
        Free(usize),
        /// Free a page with an order, whatever it is.
        FreeAt(usize, u32),
        /// Free a page with a count, whatever it is.
        FreeExactAt(usize, usize),
        /// Free the n-th live allocation with a wrong order or count.
        FreeWrong(usize, u32),
        /// Free again something freed earlier.
        Refree(usize),
        Add(usize),
        Remove(usize),
        Isolate(usize),
        Unisolate,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..=MAX + 1).prop_map(Op::Alloc),
            4 => (0..=SLOT_PAGES + 1).prop_map(Op::AllocExact),
            6 => any::<usize>().prop_map(Op::Free),
            2 => (0..PAGES + 4, 0..=MAX + 1).prop_map(|(p, o)| Op::FreeAt(p, o)),
            2 => (0..PAGES + 4, 0..=SLOT_PAGES + 1).prop_map(|(p, n)| Op::FreeExactAt(p, n)),
            2 => (any::<usize>(), 1..=MAX).prop_map(|(i, d)| Op::FreeWrong(i, d)),
            2 => any::<usize>().prop_map(Op::Refree),
            1 => (0..SLOTS + 1).prop_map(Op::Add),
            1 => (0..SLOTS + 1).prop_map(Op::Remove),
            1 => (0..SLOTS + 1).prop_map(Op::Isolate),
            1 => Just(Op::Unisolate),
        ]
    }

    /// Runs `f`; if the model says it must fail, checks that it failed and changed nothing.
    fn refused_or_done(
        b: &mut Buddy<Vec<PageMeta>>,
        expected: Result<(), FreeError>,
        f: impl FnOnce(&mut Buddy<Vec<PageMeta>>) -> Result<(), FreeError>,
    ) -> bool {
        let before = snapshot(b);
        let got = f(b);
        assert_eq!(got, expected);
        if got.is_err() {
            assert_eq!(snapshot(b), before, "a refused free changed the state");
        }
        got.is_ok()
    }

    fn run(ops: &[Op], initially_present: [bool; SLOTS]) {
        let mut b = buddy(MAX, SLOTS);
        let mut m = Model::default();
        for (slot, &p) in initially_present.iter().enumerate() {
            if p {
                b.add_block(slot).unwrap();
                m.present[slot] = true;
            }
        }
        let mut freed: Vec<(usize, Kind)> = Vec::new();
        for op in ops {
            match *op {
                Op::Alloc(order) => {
                    let before = snapshot(&b);
                    match b.alloc(order) {
                        Ok(p) => m.take(p, Kind::Order(order)),
                        Err(e) => {
                            let expected = if order > MAX {
                                AllocError::BadOrder { order }
                            } else {
                                assert!(!m.fits(order), "alloc({order}) failed but fits");
                                AllocError::NoMemory
                            };
                            assert_eq!(e, expected);
                            assert_eq!(snapshot(&b), before);
                        }
                    }
                }
                Op::AllocExact(n) => {
                    let before = snapshot(&b);
                    match b.alloc_exact(n) {
                        Ok(p) => {
                            assert_eq!(p % n.next_power_of_two(), 0);
                            m.take(p, Kind::Exact(n));
                        }
                        Err(e) => {
                            let expected = if n == 0 || n > SLOT_PAGES {
                                AllocError::BadCount { npages: n }
                            } else {
                                let order = n.next_power_of_two().trailing_zeros();
                                assert!(!m.fits(order), "alloc_exact({n}) failed but fits");
                                AllocError::NoMemory
                            };
                            assert_eq!(e, expected);
                            assert_eq!(snapshot(&b), before);
                        }
                    }
                }
                Op::Free(i) => {
                    if m.live.is_empty() {
                        continue;
                    }
                    let (&p, &kind) = m.live.iter().nth(i % m.live.len()).unwrap();
                    match kind {
                        Kind::Order(k) => b.free(p, k).unwrap(),
                        Kind::Exact(n) => b.free_exact(p, n).unwrap(),
                    }
                    m.give_back(p);
                    freed.push((p, kind));
                }
                Op::FreeAt(p, order) => {
                    let expected = m.expect_free(p, order);
                    if refused_or_done(&mut b, expected, |b| b.free(p, order)) {
                        m.give_back(p);
                    }
                }
                Op::FreeExactAt(p, n) => {
                    let expected = m.expect_free_exact(p, n);
                    if refused_or_done(&mut b, expected, |b| b.free_exact(p, n)) {
                        m.give_back(p);
                    }
                }
                Op::FreeWrong(i, d) => {
                    if m.live.is_empty() {
                        continue;
                    }
                    let (&p, &kind) = m.live.iter().nth(i % m.live.len()).unwrap();
                    let (order, n) = match kind {
                        Kind::Order(k) => ((k + d) % (MAX + 1), 1 << ((k + d) % (MAX + 1))),
                        Kind::Exact(n) => (0, (n + d as usize - 1) % SLOT_PAGES + 1),
                    };
                    // Never right: another order, or free() of an exact allocation.
                    let expected = m.expect_free(p, order);
                    assert!(expected.is_err());
                    refused_or_done(&mut b, expected, |b| b.free(p, order));
                    let expected = m.expect_free_exact(p, n);
                    if refused_or_done(&mut b, expected, |b| b.free_exact(p, n)) {
                        m.give_back(p);
                    }
                }
                Op::Refree(i) => {
                    if freed.is_empty() {
                        continue;
                    }
                    let (p, kind) = freed[i % freed.len()];
                    let done = match kind {
                        Kind::Order(k) => {
                            refused_or_done(&mut b, m.expect_free(p, k), |b| b.free(p, k))
                        }
                        Kind::Exact(n) => refused_or_done(&mut b, m.expect_free_exact(p, n), |b| {
                            b.free_exact(p, n)
                        }),
                    };
                    if done {
                        m.give_back(p);
                    }
                }
                Op::Add(slot) => {
                    let got = b.add_block(slot);
                    if slot >= SLOTS {
                        assert_eq!(
                            got,
                            Err(SlotError::OutOfRange {
                                slot,
                                nr_slots: SLOTS
                            })
                        );
                    } else if m.present[slot] {
                        assert_eq!(got, Err(SlotError::Present { slot }));
                    } else {
                        assert_eq!(got, Ok(()));
                        m.present[slot] = true;
                    }
                }
                Op::Remove(slot) => {
                    let before = snapshot(&b);
                    let got = b.remove_block(slot);
                    if slot >= SLOTS {
                        assert!(matches!(got, Err(SlotError::OutOfRange { .. })));
                    } else if !m.present[slot] {
                        assert_eq!(got, Err(SlotError::Absent { slot }));
                    } else if m
                        .owner
                        .range(slot * SLOT_PAGES..(slot + 1) * SLOT_PAGES)
                        .next()
                        .is_some()
                    {
                        assert_eq!(got, Err(SlotError::InUse { slot }));
                    } else {
                        assert_eq!(got, Ok(()));
                        m.present[slot] = false;
                        if m.isolated == Some(slot) {
                            m.isolated = None;
                        }
                    }
                    if got.is_err() {
                        assert_eq!(snapshot(&b), before);
                    }
                }
                Op::Isolate(slot) => {
                    let before = snapshot(&b);
                    let got = b.isolate(slot);
                    if slot >= SLOTS {
                        assert!(matches!(got, Err(SlotError::OutOfRange { .. })));
                    } else if !m.present[slot] {
                        assert_eq!(got, Err(SlotError::Absent { slot }));
                    } else if let Some(i) = m.isolated {
                        assert_eq!(got, Err(SlotError::Busy { isolated: i }));
                    } else {
                        assert_eq!(got, Ok(()));
                        m.isolated = Some(slot);
                    }
                    if got.is_err() {
                        assert_eq!(snapshot(&b), before);
                    }
                }
                Op::Unisolate => {
                    b.unisolate();
                    m.isolated = None;
                }
            }
            check(&b, &m);
        }
        // Freeing everything restores one max-order block per present slot.
        b.unisolate();
        for (&p, &kind) in &m.live {
            match kind {
                Kind::Order(k) => b.free(p, k).unwrap(),
                Kind::Exact(n) => b.free_exact(p, n).unwrap(),
            }
        }
        let present: Vec<usize> = b.present_slots().collect();
        assert_eq!(b.nr_free(MAX), present.len());
        assert_eq!(b.free_pages(), b.present_pages());
        for s in present {
            assert!(b
                .blocks(s)
                .unwrap()
                .eq([free_block(s * SLOT_PAGES, SLOT_PAGES)]));
        }
        while let Some(s) = b.free_block_slot() {
            b.remove_block(s).unwrap();
        }
        assert_eq!(b.nr_present_slots(), 0);
        assert_eq!(b.free_pages(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn matches_the_model(
            ops in prop::collection::vec(op(), 1..160),
            present in any::<[bool; SLOTS]>(),
        ) {
            run(&ops, present);
        }
    }
}
