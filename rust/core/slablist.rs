// SPDX-License-Identifier: GPL-2.0

//! The full, partial and empty lists of a slab cache: intrusive doubly-linked lists threaded
//! through the `next`/`prev` links of the slab headers ([`SlabLayout::links`]).
//!
//! A slab is named by its start address (a `u64`, never 0; 0 ends a list). The lists never
//! allocate and every operation is O(1). The memory of the headers is reached through
//! [`Headers`], which the kernel implements over real slabs (under the cache lock) and the tests
//! over a map.

use super::slab::{SlabLayout, SlabList};

/// Access to slab headers by slab address.
pub trait Headers {
    /// The header (and bitmap) bytes of the slab at `slab`, which is on one of the lists or is
    /// being put on one.
    fn header(&mut self, slab: u64) -> &mut [u8];
}

/// The three lists of one cache.
///
/// # Invariants
///
/// Each head is 0 or the address of a slab whose `prev` link is 0; following `next` links from
/// a head visits every slab of that list once and ends at 0; `prev` links mirror `next` links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabLists {
    heads: [u64; 3],
}

fn idx(list: SlabList) -> usize {
    match list {
        SlabList::Empty => 0,
        SlabList::Partial => 1,
        SlabList::Full => 2,
    }
}

impl SlabLists {
    /// Three empty lists.
    pub const fn new() -> SlabLists {
        SlabLists { heads: [0; 3] }
    }

    /// The first slab of `list`, if any.
    #[inline]
    pub fn first(&self, list: SlabList) -> Option<u64> {
        match self.heads[idx(list)] {
            0 => None,
            s => Some(s),
        }
    }

    /// Puts `slab` (on no list) at the front of `list`.
    pub fn push(&mut self, layout: &SlabLayout, h: &mut impl Headers, list: SlabList, slab: u64) {
        let head = self.heads[idx(list)];
        layout.set_links(h.header(slab), head, 0);
        if head != 0 {
            let (next, _) = layout.links(h.header(head));
            layout.set_links(h.header(head), next, slab);
        }
        self.heads[idx(list)] = slab;
    }

    /// Takes `slab` off `list`, which holds it.
    pub fn remove(&mut self, layout: &SlabLayout, h: &mut impl Headers, list: SlabList, slab: u64) {
        let (next, prev) = layout.links(h.header(slab));
        if prev == 0 {
            self.heads[idx(list)] = next;
        } else {
            let (_, pprev) = layout.links(h.header(prev));
            layout.set_links(h.header(prev), next, pprev);
        }
        if next != 0 {
            let (nnext, _) = layout.links(h.header(next));
            layout.set_links(h.header(next), nnext, prev);
        }
        layout.set_links(h.header(slab), 0, 0);
    }

    /// Calls `f` with each slab of `list`, front to back, at most `max` of them (the list's
    /// length from the cache's counts: it also ends a corrupted, cyclic list).
    pub fn for_each(
        &self,
        layout: &SlabLayout,
        h: &mut impl Headers,
        list: SlabList,
        max: usize,
        mut f: impl FnMut(u64),
    ) {
        let mut slab = self.heads[idx(list)];
        for _ in 0..max {
            if slab == 0 {
                break;
            }
            f(slab);
            slab = layout.links(h.header(slab)).0;
        }
    }

    /// Moves `slab` from `from` to the front of `to`.
    pub fn move_to(
        &mut self,
        layout: &SlabLayout,
        h: &mut impl Headers,
        from: SlabList,
        to: SlabList,
        slab: u64,
    ) {
        if from != to {
            self.remove(layout, h, from, slab);
            self.push(layout, h, to, slab);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    struct Map(BTreeMap<u64, Vec<u8>>);

    impl Headers for Map {
        fn header(&mut self, slab: u64) -> &mut [u8] {
            self.0.get_mut(&slab).expect("slab exists")
        }
    }

    fn setup(n: u64) -> (SlabLayout, Map) {
        let layout = SlabLayout::new(64, 8, 4096, 0).unwrap();
        let mut m = BTreeMap::new();
        for s in 1..=n {
            let mut hdr = std::vec![0u8; layout.header_bytes()];
            layout.init(&mut hdr, 0, 7).unwrap();
            m.insert(s * 4096, hdr);
        }
        (layout, Map(m))
    }

    fn walk(l: &SlabLists, layout: &SlabLayout, h: &mut Map, list: SlabList) -> Vec<u64> {
        let mut out = Vec::new();
        let mut prev = 0;
        let mut cur = l.first(list).unwrap_or(0);
        while cur != 0 {
            let (next, p) = layout.links(h.header(cur));
            assert_eq!(p, prev, "prev link of {cur:#x}");
            out.push(cur);
            prev = cur;
            cur = next;
        }
        out
    }

    #[test]
    fn for_each_walks_front_to_back_and_is_bounded() {
        let (layout, mut h) = setup(3);
        let mut l = SlabLists::new();
        for s in [4096u64, 8192, 12288] {
            l.push(&layout, &mut h, SlabList::Empty, s);
        }
        let mut seen = Vec::new();
        l.for_each(&layout, &mut h, SlabList::Empty, 10, |s| seen.push(s));
        assert_eq!(seen, walk(&l, &layout, &mut h, SlabList::Empty));
        let mut two = Vec::new();
        l.for_each(&layout, &mut h, SlabList::Empty, 2, |s| two.push(s));
        assert_eq!(two, seen[..2]);
        let mut none = 0;
        l.for_each(&layout, &mut h, SlabList::Full, 10, |_| none += 1);
        assert_eq!(none, 0);
    }

    #[test]
    fn push_remove_move() {
        let (layout, mut h) = setup(3);
        let mut l = SlabLists::new();
        l.push(&layout, &mut h, SlabList::Empty, 4096);
        l.push(&layout, &mut h, SlabList::Empty, 8192);
        l.push(&layout, &mut h, SlabList::Empty, 12288);
        assert_eq!(
            walk(&l, &layout, &mut h, SlabList::Empty),
            [12288, 8192, 4096]
        );
        l.move_to(&layout, &mut h, SlabList::Empty, SlabList::Partial, 8192);
        assert_eq!(walk(&l, &layout, &mut h, SlabList::Empty), [12288, 4096]);
        assert_eq!(walk(&l, &layout, &mut h, SlabList::Partial), [8192]);
        l.remove(&layout, &mut h, SlabList::Empty, 12288);
        l.remove(&layout, &mut h, SlabList::Empty, 4096);
        assert_eq!(l.first(SlabList::Empty), None);
        assert_eq!(l.first(SlabList::Full), None);
    }

    proptest! {
        // Random moves keep the lists equal to a model: each slab on exactly one list, links
        // consistent both ways.
        #[test]
        fn lists_match_a_model(ops in proptest::collection::vec((1u64..=8, 0usize..3), 0..200)) {
            let (layout, mut h) = setup(8);
            let lists = [SlabList::Empty, SlabList::Partial, SlabList::Full];
            let mut l = SlabLists::new();
            let mut model: BTreeMap<u64, usize> = BTreeMap::new();
            for s in 1..=8u64 {
                l.push(&layout, &mut h, SlabList::Empty, s * 4096);
                model.insert(s * 4096, 0);
            }
            for (s, to) in ops {
                let slab = s * 4096;
                let from = model[&slab];
                l.move_to(&layout, &mut h, lists[from], lists[to], slab);
                model.insert(slab, to);
            }
            for (i, list) in lists.iter().enumerate() {
                let mut got = walk(&l, &layout, &mut h, *list);
                got.sort();
                let want: Vec<u64> = model.iter().filter(|(_, v)| **v == i).map(|(k, _)| *k).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
