// SPDX-License-Identifier: GPL-2.0

//! Chapter 3: slab cache states. A cache's slabs move between its full, partial and empty
//! lists as objects are allocated and freed; empty slabs beyond the cache's bound go back at
//! once, the kept ones when the shrinker asks.
//!
//! The textbook's side is a [`Model`] of the rules (an allocation takes from the first partial
//! slab, else the first empty one, else a new slab; a slab that changes lists goes to the front
//! of its new list; a slab that empties beyond `keep_empty` goes back; the shrinker takes every
//! empty slab), sized by the kernel's own answer (objects per slab, empty slabs kept), so that
//! it holds on any layout (red zones included). The kernel's side is `RKMEM_IOC_CACHE_SLABS`
//! (the three lists under the cache's lock) and `/proc/rkmem/slabinfo`.

use super::{info, Figures};
use crate::dev::{Alloc, CacheSpec, Device, PagesReq};
use crate::procfs;
use crate::uapi::{
    RkmemCacheSlabs, RkmemSlabEntry, RKMEM_CACHE_NOCPU, RKMEM_FEAT_SLABS, RKMEM_INFO_OBJECT,
    RKMEM_INFO_PAGES, RKMEM_MAX_ORDER, RKMEM_SLAB_EMPTY, RKMEM_SLAB_FULL, RKMEM_SLAB_PARTIAL,
    RKMEM_TRIM_PCP,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The chapter's objects: a page each, so that a slab holds a handful of them (SLUB's sizing
/// gives 8 per 8-page slab on the fast kernel; the model reads the count from the kernel).
pub const OBJ_SIZE: u32 = 4096;
/// The chapter's cache.
pub const CACHE_NAME: &str = "lab_slab";
/// `/proc/rkmem/shrinker`.
const SHRINKER: &str = "/proc/rkmem/shrinker";
/// What the chapter writes to make the host kernel run every shrinker (slab caches only).
const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// One of a cache's three lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum List {
    /// Every object in use.
    Full,
    /// Some objects in use.
    Partial,
    /// No object in use.
    Empty,
}

impl List {
    /// The list of a slab with `in_use` of `objects` objects in use.
    pub fn of(in_use: u32, objects: u32) -> List {
        if in_use == 0 {
            List::Empty
        } else if in_use >= objects {
            List::Full
        } else {
            List::Partial
        }
    }

    fn name(self) -> &'static str {
        match self {
            List::Full => "full",
            List::Partial => "partial",
            List::Empty => "empty",
        }
    }

    fn from_uapi(list: u32) -> Option<List> {
        match list {
            RKMEM_SLAB_FULL => Some(List::Full),
            RKMEM_SLAB_PARTIAL => Some(List::Partial),
            RKMEM_SLAB_EMPTY => Some(List::Empty),
            _ => None,
        }
    }
}

/// A slab on a list: its name and objects in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slab {
    /// `A`, `B`, ... in the order the slabs were made.
    pub name: String,
    /// Objects in use.
    pub in_use: u32,
}

/// A cache's three lists, each front (where allocations look first) to back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lists {
    /// The full list.
    pub full: Vec<Slab>,
    /// The partial list.
    pub partial: Vec<Slab>,
    /// The empty list.
    pub empty: Vec<Slab>,
}

impl Lists {
    fn get(&self, l: List) -> &Vec<Slab> {
        match l {
            List::Full => &self.full,
            List::Partial => &self.partial,
            List::Empty => &self.empty,
        }
    }

    fn get_mut(&mut self, l: List) -> &mut Vec<Slab> {
        match l {
            List::Full => &mut self.full,
            List::Partial => &mut self.partial,
            List::Empty => &mut self.empty,
        }
    }

    /// Slabs on the three lists.
    pub fn slabs(&self) -> usize {
        self.full.len() + self.partial.len() + self.empty.len()
    }

    /// Objects in use over all slabs.
    pub fn in_use(&self) -> u64 {
        [&self.full, &self.partial, &self.empty]
            .iter()
            .flat_map(|l| l.iter())
            .map(|s| u64::from(s.in_use))
            .sum()
    }

    /// The list a slab is on, and where.
    fn find(&self, name: &str) -> Option<(List, usize)> {
        [List::Full, List::Partial, List::Empty]
            .into_iter()
            .find_map(|l| {
                self.get(l)
                    .iter()
                    .position(|s| s.name == name)
                    .map(|i| (l, i))
            })
    }

    /// `full: C B A | partial: D(2/8) | empty: -`: each list front to back, partial slabs with
    /// their objects in use (a full slab has all `objects`, an empty one none).
    pub fn render(&self, objects: u32) -> String {
        let part = |l: List| {
            let v = self.get(l);
            let names: Vec<String> = v
                .iter()
                .map(|s| {
                    if List::of(s.in_use, objects) == l && l != List::Partial {
                        s.name.clone()
                    } else {
                        format!("{}({}/{objects})", s.name, s.in_use)
                    }
                })
                .collect();
            let body = if names.is_empty() {
                "-".to_string()
            } else {
                names.join(" ")
            };
            format!("{}: {body}", l.name())
        };
        format!(
            "{} | {} | {}",
            part(List::Full),
            part(List::Partial),
            part(List::Empty)
        )
    }

    fn json(&self) -> serde_json::Value {
        let l = |v: &Vec<Slab>| {
            v.iter()
                .map(|s| serde_json::json!({"name": s.name, "in_use": s.in_use}))
                .collect::<Vec<_>>()
        };
        serde_json::json!({"full": l(&self.full), "partial": l(&self.partial),
            "empty": l(&self.empty)})
    }
}

/// The name of the `i`-th slab made: `A` .. `Z`, then `A2` .. `Z2`, ...
pub fn slab_name(i: usize) -> String {
    let c = char::from(b'A' + (i % 26) as u8);
    match i / 26 {
        0 => c.to_string(),
        n => format!("{c}{}", n + 1),
    }
}

/// What happened to one slab in a step of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new slab from the buddy allocator (on the empty list, about to be used).
    New(String),
    /// A slab moved between lists.
    Moved(String, List, List),
    /// A slab went back to the buddy allocator.
    Released(String),
}

/// The events of a step, one path per slab in the order they first moved:
/// `A: new -> partial -> full`, `G: partial -> empty -> back to the buddy allocator`; slabs in
/// a row with the same path share it.
pub fn paths(events: &[Event]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut path: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for e in events {
        // Where the slab's path starts if this is its first event, and where it goes.
        let (name, start, next) = match e {
            Event::New(n) => (n, "new", None),
            Event::Moved(n, from, to) => (n, from.name(), Some(to.name())),
            Event::Released(n) => (n, List::Empty.name(), Some("back to the buddy allocator")),
        };
        let p = path.entry(name.clone()).or_insert_with(|| {
            order.push(name.clone());
            vec![start]
        });
        if let Some(next) = next {
            p.push(next);
        }
    }
    // Slabs in a row that went the same way share one path: `E, F, G: new -> partial -> full`.
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    for n in order {
        let p = path[&n].join(" -> ");
        match out.last_mut() {
            Some((names, last)) if *last == p => names.push(n),
            _ => out.push((vec![n], p)),
        }
    }
    out.into_iter()
        .map(|(names, p)| format!("{}: {p}", names.join(", ")))
        .collect()
}

/// The textbook's cache: three lists and the rules that move slabs between them.
#[derive(Clone, Debug)]
pub struct Model {
    /// Objects per slab.
    pub objects: u32,
    /// Empty slabs kept; one that empties beyond them goes back at once.
    pub keep_empty: u32,
    /// The lists.
    pub lists: Lists,
    made: usize,
}

impl Model {
    /// No slabs yet.
    pub fn new(objects: u32, keep_empty: u32) -> Model {
        Model {
            objects,
            keep_empty,
            lists: Lists::default(),
            made: 0,
        }
    }

    /// Sets the objects in use of slab `name` (at `at` on `from`) and moves it to the front of
    /// the list that count belongs on, if that is another.
    fn set(&mut self, from: List, at: usize, in_use: u32, ev: &mut Vec<Event>) -> List {
        let to = List::of(in_use, self.objects);
        let mut s = self.lists.get_mut(from).remove(at);
        s.in_use = in_use;
        if to != from {
            ev.push(Event::Moved(s.name.clone(), from, to));
            self.lists.get_mut(to).insert(0, s);
        } else {
            self.lists.get_mut(from).insert(at, s);
        }
        to
    }

    /// An allocation: the first partial slab, else the first empty one, else a new slab (which
    /// joins the empty list first). Returns the slab's name.
    pub fn alloc(&mut self, ev: &mut Vec<Event>) -> String {
        let from = if !self.lists.partial.is_empty() {
            List::Partial
        } else {
            if self.lists.empty.is_empty() {
                let name = slab_name(self.made);
                self.made += 1;
                ev.push(Event::New(name.clone()));
                self.lists.empty.insert(0, Slab { name, in_use: 0 });
            }
            List::Empty
        };
        let s = &self.lists.get(from)[0];
        let (name, n) = (s.name.clone(), s.in_use + 1);
        self.set(from, 0, n, ev);
        name
    }

    /// A free of an object of slab `name`; a slab that empties while the empty list already
    /// holds `keep_empty` slabs goes back to the buddy allocator.
    pub fn free(&mut self, name: &str, ev: &mut Vec<Event>) -> Result<(), String> {
        let (from, at) = self
            .lists
            .find(name)
            .ok_or_else(|| format!("the textbook has no slab {name}"))?;
        let n = self.lists.get(from)[at].in_use;
        if n == 0 {
            return Err(format!("slab {name} has no object to free"));
        }
        if self.set(from, at, n - 1, ev) == List::Empty
            && self.lists.empty.len() > self.keep_empty as usize
        {
            let s = self.lists.empty.remove(0);
            ev.push(Event::Released(s.name));
        }
        Ok(())
    }

    /// The shrinker: every empty slab goes back.
    pub fn shrink(&mut self, ev: &mut Vec<Event>) {
        for s in self.lists.empty.drain(..) {
            ev.push(Event::Released(s.name));
        }
    }
}

/// One step of the chapter's script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocate this many objects.
    Alloc(u32),
    /// Free this many objects of a slab (the last allocated first).
    Free(String, u32),
    /// Free every object of a slab.
    FreeAll(String),
    /// Allocate until every slab is full and there are this many slabs.
    FillTo(usize),
    /// The host kernel's reclaim of slab caches runs every shrinker.
    Shrink,
}

/// The script for slabs of `objects` objects in a cache keeping `keep_empty` empty slabs, with
/// what the textbook says of each step: a slab made, filled, partial again, the partial slab
/// preferred, slabs emptied and kept, an empty slab reused, `keep_empty + 2` slabs filled and
/// emptied one by one (the last two go back at once), then the shrinker.
pub fn script(objects: u32, keep_empty: u32) -> Vec<(Op, String)> {
    let n = objects;
    let slabs = keep_empty as usize + 2;
    let mut s = vec![
        (
            Op::Alloc(1),
            "no slab has a free object: a new slab from the buddy allocator".to_string(),
        ),
        (Op::Alloc(n - 1), "A has no free object left: full".into()),
        (
            Op::Alloc(2 * n + 2),
            "new slabs B and C fill up, D takes the rest".into(),
        ),
        (
            Op::Free("B".into(), 1),
            "a free in a full slab makes it partial".into(),
        ),
        (
            Op::Alloc(1),
            "a partial slab is used first, the one at the front of the list (B)".into(),
        ),
        (
            Op::FreeAll("A".into()),
            "a slab with no object in use is empty; the cache keeps it".into(),
        ),
        (
            Op::Alloc(1),
            "the partial slab (D) is used before the empty one (A)".into(),
        ),
        (Op::FreeAll("D".into()), "D is empty too".into()),
        (
            Op::Alloc(1),
            "no partial slab: the empty slab at the front (D) is used, no new slab".into(),
        ),
        (
            Op::FillTo(slabs),
            format!(
                "the partial slab, then the empty one, then new slabs: {slabs} slabs, all full"
            ),
        ),
    ];
    for i in 0..slabs {
        let name = slab_name(i);
        let why = if i < keep_empty as usize {
            format!(
                "{name} is kept on the empty list ({} of {keep_empty})",
                i + 1
            )
        } else {
            format!(
                "the cache keeps {keep_empty} empty slabs already: {name} goes back to the buddy allocator at once"
            )
        };
        s.push((Op::FreeAll(name), why));
    }
    s.push((
        Op::Shrink,
        "under memory pressure the shrinker takes back every empty slab".into(),
    ));
    s
}

/// An object the chapter holds: its handle, the slab the textbook put it in and the kernel's.
struct Held {
    alloc: Alloc,
    textbook: String,
    kernel: String,
}

/// The kernel's side: slabs named by their position in the arena, in the order they first
/// appeared.
struct Kernel<'a> {
    d: &'a Device,
    cache: u32,
    names: BTreeMap<(u32, u32), String>,
    made: usize,
}

impl Kernel<'_> {
    /// The name of the slab at `(slot, page)`, a new one if it is new.
    fn name(&mut self, pos: (u32, u32)) -> (String, bool) {
        if let Some(n) = self.names.get(&pos) {
            return (n.clone(), false);
        }
        let n = slab_name(self.made);
        self.made += 1;
        self.names.insert(pos, n.clone());
        (n, true)
    }

    /// The three lists from `RKMEM_IOC_CACHE_SLABS`; slabs no longer on them are forgotten (a
    /// slab made later at the same place is a new one).
    fn lists(&mut self) -> Result<(RkmemCacheSlabs, Vec<RkmemSlabEntry>, Lists), String> {
        let (a, entries) = self
            .d
            .cache_slabs(self.cache)
            .map_err(|e| format!("RKMEM_IOC_CACHE_SLABS: {e}"))?;
        let total = u64::from(a.full) + u64::from(a.partial) + u64::from(a.empty);
        if entries.len() as u64 != total {
            return Err(format!(
                "RKMEM_IOC_CACHE_SLABS: {} entries for {total} slabs",
                entries.len()
            ));
        }
        let here: BTreeSet<(u32, u32)> = entries.iter().map(|e| (e.slot, e.page)).collect();
        self.names.retain(|pos, _| here.contains(pos));
        let mut l = Lists::default();
        for e in &entries {
            let list = List::from_uapi(e.list)
                .ok_or_else(|| format!("RKMEM_IOC_CACHE_SLABS: list {}", e.list))?;
            let (name, _) = self.name((e.slot, e.page));
            l.get_mut(list).push(Slab {
                name,
                in_use: e.in_use,
            });
        }
        Ok((a, entries, l))
    }
}

/// Counters of `/proc/rkmem/shrinker`.
fn shrinker() -> Result<HashMap<String, u64>, String> {
    let mut m = HashMap::new();
    procfs::parse_counters(SHRINKER, &procfs::read(SHRINKER)?, &mut m)?;
    Ok(m)
}

/// The shrinker counters the chapter shows.
const SHRINKER_SHOWN: [&str; 6] = [
    "count_calls",
    "scan_calls",
    "objects_freed",
    "pages_to_host",
    "reclaimable_now",
    "reclaimable_empty_slab_pages",
];

/// The cache's slabinfo row: (active_objs, num_objs, active_slabs, num_slabs).
fn slabinfo_row() -> Result<(procfs::SlabRow, [u64; 4]), String> {
    let r = procfs::slabinfo()?
        .into_iter()
        .find(|r| r.name == CACHE_NAME)
        .ok_or_else(|| format!("no row {CACHE_NAME} in {}", procfs::SLABINFO))?;
    let v = [r.active_objs, r.num_objs, r.active_slabs, r.num_slabs];
    Ok((r, v))
}

/// What slabinfo must say of `lists`: (active_objs, num_objs, active_slabs, num_slabs).
pub fn slabinfo_of(lists: &Lists, objects: u32) -> [u64; 4] {
    let slabs = lists.slabs() as u64;
    [
        lists.in_use(),
        slabs * u64::from(objects),
        (lists.full.len() + lists.partial.len()) as u64,
        slabs,
    ]
}

/// Fills the slots the arena has now with page blocks (largest first), so that the next
/// allocation grows it by a slot of its own. Returns the blocks and the slots that were there.
fn ballast(d: &Device) -> Result<(Vec<Alloc>, BTreeSet<u32>), String> {
    let maps = d
        .arena_maps()
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
    let present: BTreeSet<u32> = maps.iter().filter(|m| m.present).map(|m| m.slot).collect();
    let mut held = Vec::new();
    // Pages in the per-CPU caches are no use to a block: back to the buddy lists first. A few
    // rounds, as an order-0 allocation refills this CPU's cache in batches.
    for _ in 0..4 {
        d.trim(RKMEM_TRIM_PCP)
            .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
        for order in (0..=RKMEM_MAX_ORDER).rev() {
            loop {
                let a = match d.pages_alloc(PagesReq::Order(order)) {
                    Ok(a) => a,
                    Err(nix::errno::Errno::ENOMEM) => break,
                    Err(e) => return Err(format!("RKMEM_IOC_PAGES_ALLOC order {order}: {e}")),
                };
                let i = info(d, &a, RKMEM_INFO_PAGES)?;
                if !present.contains(&i.slot) {
                    // The arena grew: the slots it had are full at this order.
                    d.free(a.handle)
                        .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))?;
                    break;
                }
                held.push(a);
            }
        }
        d.trim(RKMEM_TRIM_PCP)
            .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
        let left: u64 = d
            .arena_maps()
            .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?
            .iter()
            .filter(|m| present.contains(&m.slot))
            .flat_map(|m| m.blocks.iter())
            .filter(|b| b.kind == crate::uapi::RKMEM_BLOCK_FREE)
            .map(|b| u64::from(b.pages))
            .sum();
        if left == 0 {
            return Ok((held, present));
        }
    }
    for a in held {
        let _ = d.free(a.handle);
    }
    Err("could not fill the arena's slots (other users allocate from it?)".into())
}

/// `rkmemctl lab slab`.
pub fn slab(fig: &mut Figures) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let v = d.version().map_err(|e| format!("version: {e}"))?;
    if v.features & RKMEM_FEAT_SLABS == 0 {
        return Err("the module has no RKMEM_IOC_CACHE_SLABS (feature bit RKMEM_FEAT_SLABS missing): load a newer rkmem.ko".into());
    }
    let (ballast, present) = ballast(&d)?;
    let pages: u64 = ballast
        .iter()
        .map(|a| a.bytes / crate::dev::PAGE_SIZE)
        .sum();
    let r = run(&d, fig, &present, (ballast.len(), pages));
    for a in ballast {
        let _ = d.free(a.handle);
    }
    r
}

fn run(
    d: &Device,
    fig: &mut Figures,
    present: &BTreeSet<u32>,
    ballast: (usize, u64),
) -> Result<(), String> {
    let mut spec = CacheSpec::new(CACHE_NAME, OBJ_SIZE, 8)?.to_arg();
    spec.flags |= RKMEM_CACHE_NOCPU;
    d.cache_create_raw(&mut spec)
        .map_err(|e| format!("RKMEM_IOC_CACHE_CREATE {CACHE_NAME}: {e}"))?;
    let mut held: Vec<Held> = Vec::new();
    let r = chapter(d, fig, spec.id, spec.objsize, present, ballast, &mut held);
    for h in held.drain(..) {
        let _ = d.free(h.alloc.handle);
    }
    let destroyed = d
        .cache_destroy(spec.id)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY: {e}"));
    r.and(destroyed)
}

#[allow(clippy::too_many_lines)]
fn chapter(
    d: &Device,
    fig: &mut Figures,
    cache: u32,
    stride: u32,
    present: &BTreeSet<u32>,
    (ballast_blocks, ballast_pages): (usize, u64),
    held: &mut Vec<Held>,
) -> Result<(), String> {
    let mut k = Kernel {
        d,
        cache,
        names: BTreeMap::new(),
        made: 0,
    };
    let (a, _, _) = k.lists()?;
    let (objects, keep) = (a.objects, a.keep_empty);
    if objects < 3 {
        return Err(format!(
            "{objects} objects per slab: the chapter needs at least 3 to show a partial slab"
        ));
    }
    let slots: Vec<String> = present.iter().map(u32::to_string).collect();
    println!("== lab slab: slab cache states (full, partial, empty) and the shrinker");
    println!(
        "textbook: a cache keeps its slabs on three lists: full (every object in use), partial\n\
         (some) and empty (none). An allocation takes an object from a partial slab if there is\n\
         one, else from an empty slab, else from a new slab from the page allocator; a free moves\n\
         its slab from full to partial, or from partial to empty. Empty slabs are kept for the\n\
         next allocations, up to a bound: past it a slab that empties goes back at once. Under\n\
         memory pressure the shrinker takes back the empty slabs.\n\
         rkmem: a cache of {OBJ_SIZE}-byte objects created with RKMEM_CACHE_NOCPU (no per-CPU object\n\
         arrays: every allocation and free goes straight to a slab). A slab that changes lists\n\
         goes to the front of its new list, and allocations look at the front. The kernel's\n\
         lists come from RKMEM_IOC_CACHE_SLABS (read under the cache's lock; slabs are named\n\
         A, B, C, ... in the order they appear), slabinfo from {}.\n\
         rkmem's shrinker gives the host kernel whole 4 MiB blocks above the arena's initial\n\
         size: so that it can take this cache's empty slabs back, the chapter first fills the\n\
         arena's slot {} with {ballast_blocks} block(s) of pages ({ballast_pages} pages, held to the end), and\n\
         the slabs come from a block of their own, which the arena takes from the host kernel.",
        procfs::SLABINFO,
        slots.join(", ")
    );
    println!(
        "cache {CACHE_NAME}: {objects} objects per slab, {} page(s) per slab, stride {stride}, keeps {keep} empty slabs",
        a.pages
    );
    fig.emit(
        "layout",
        serde_json::json!({"size": OBJ_SIZE, "objects": objects, "pages": a.pages,
            "stride": stride, "keep_empty": keep, "ballast_blocks": ballast_blocks,
            "ballast_pages": ballast_pages}),
    )?;
    let mut model = Model::new(objects, keep);
    let steps = script(objects, keep);
    let total = steps.len();
    let mut mismatches = 0u32;
    let mut matched = 0usize;
    for (t, (op, why)) in steps.into_iter().enumerate() {
        let t = t + 1;
        let mut ev = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let mut new_kernel: Vec<String> = Vec::new();
        let mut before_shrink = None;
        let label = match &op {
            Op::Alloc(n) => format!("allocate {n} object{}", if *n == 1 { "" } else { "s" }),
            Op::Free(s, n) => format!("free {n} object{} of {s}", if *n == 1 { "" } else { "s" }),
            Op::FreeAll(s) => format!("free every object of {s}"),
            Op::FillTo(_) => String::new(),
            Op::Shrink => format!("the shrinker: echo 2 > {DROP_CACHES}"),
        };
        let mut alloc_n = |n: u64,
                           ev: &mut Vec<Event>,
                           model: &mut Model,
                           notes: &mut Vec<String>,
                           new_kernel: &mut Vec<String>|
         -> Result<(), String> {
            for _ in 0..n {
                let name = model.alloc(ev);
                let a = d
                    .obj_alloc(cache)
                    .map_err(|e| format!("RKMEM_IOC_OBJ_ALLOC: {e}"))?;
                let i = info(d, &a, RKMEM_INFO_OBJECT)?;
                let (kname, fresh) = k.name((i.slot, i.page));
                if fresh {
                    new_kernel.push(format!("{kname} at slot {} page {}", i.slot, i.page));
                }
                if kname != name {
                    notes.push(format!(
                        "DIFFERS: object {} went to rkmem's slab {kname}, the textbook's {name}",
                        held.len() + 1
                    ));
                }
                held.push(Held {
                    alloc: a,
                    textbook: name,
                    kernel: kname,
                });
            }
            Ok(())
        };
        let label = match op {
            Op::Alloc(n) => {
                alloc_n(
                    u64::from(n),
                    &mut ev,
                    &mut model,
                    &mut notes,
                    &mut new_kernel,
                )?;
                label
            }
            Op::FillTo(slabs) => {
                let n = (slabs as u64 * u64::from(objects)).saturating_sub(model.lists.in_use());
                alloc_n(n, &mut ev, &mut model, &mut notes, &mut new_kernel)?;
                format!("allocate {n} objects")
            }
            Op::Free(ref s, n) => {
                free_n(d, held, &mut model, &mut ev, s, Some(n))?;
                label
            }
            Op::FreeAll(ref s) => {
                free_n(d, held, &mut model, &mut ev, s, None)?;
                label
            }
            Op::Shrink => {
                let (_, entries, _) = k.lists()?;
                before_shrink = Some((
                    shrinker()?,
                    procfs::stat("arena_pages")?,
                    entries
                        .iter()
                        .filter(|e| e.list == RKMEM_SLAB_EMPTY)
                        .count(),
                ));
                model.shrink(&mut ev);
                std::fs::write(DROP_CACHES, "2").map_err(|e| format!("{DROP_CACHES}: {e}"))?;
                label
            }
        };
        let (a, _, got) = k.lists()?;
        let want = &model.lists;
        let same = got == *want;
        let (row, info_v) = slabinfo_row()?;
        let info_want = slabinfo_of(&got, objects);
        let ioctl_counts = [
            u64::from(a.full),
            u64::from(a.partial),
            u64::from(a.empty),
            a.in_use,
        ];
        let lists_counts = [
            got.full.len() as u64,
            got.partial.len() as u64,
            got.empty.len() as u64,
            got.in_use(),
        ];
        let info_ok = info_v == info_want && ioctl_counts == lists_counts;
        println!("\nstep {t}  {label}");
        println!("  textbook: {why}");
        let p = paths(&ev);
        if p.is_empty() {
            println!("  moves:    none (no slab changes lists)");
        } else {
            println!("  moves:    {}", p.join("; "));
        }
        if !new_kernel.is_empty() {
            println!("  rkmem's new slabs: {}", new_kernel.join(", "));
        }
        let mut shrink_ok = true;
        let mut shrink_fig = serde_json::Value::Null;
        if let Some((before, pages_before, kept)) = before_shrink {
            let after = shrinker()?;
            let pages_after = procfs::stat("arena_pages")?;
            let delta = |c: &str| {
                after
                    .get(c)
                    .copied()
                    .unwrap_or(0)
                    .wrapping_sub(before.get(c).copied().unwrap_or(0)) as i64
            };
            let shown = |m: &HashMap<String, u64>| {
                SHRINKER_SHOWN
                    .iter()
                    .map(|c| format!("{c} {}", m.get(*c).copied().unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "  before:   {kept} empty slabs kept; {SHRINKER}: {}",
                shown(&before)
            );
            println!("  after:    {SHRINKER}: {}", shown(&after));
            println!(
                "  shrinker: count_calls {:+}, scan_calls {:+}, objects_freed {:+}, pages_to_host {:+}; arena_pages {pages_before} -> {pages_after}",
                delta("count_calls"),
                delta("scan_calls"),
                delta("objects_freed"),
                delta("pages_to_host")
            );
            if delta("scan_calls") <= 0 {
                shrink_ok = false;
                println!(
                    "  DIFFERS: the host kernel's reclaim did not ask rkmem's shrinker to scan"
                );
            } else if got.empty.is_empty() {
                println!(
                    "  the shrinker took back the {kept} empty slabs ({} pages), and the 4 MiB block they sat in went back to the host kernel",
                    kept as u64 * u64::from(a.pages)
                );
            }
            let m = |m: &HashMap<String, u64>| {
                serde_json::Value::Object(
                    SHRINKER_SHOWN
                        .iter()
                        .map(|c| ((*c).to_string(), m.get(*c).copied().unwrap_or(0).into()))
                        .collect(),
                )
            };
            shrink_fig = serde_json::json!({"before": m(&before), "after": m(&after),
                "arena_pages_before": pages_before, "arena_pages_after": pages_after,
                "kept_empty": kept});
        }
        println!("  textbook: {}", want.render(objects));
        println!(
            "  rkmem:    {}   {}",
            got.render(objects),
            if same { "(same)" } else { "DIFFERS" }
        );
        println!(
            "  slabinfo: {CACHE_NAME} active_objs {} num_objs {} active_slabs {} num_slabs {}   {}",
            row.active_objs,
            row.num_objs,
            row.active_slabs,
            row.num_slabs,
            if info_ok {
                "(agrees with the lists)".to_string()
            } else {
                format!(
                    "DIFFERS: the lists give {} {} {} {}",
                    info_want[0], info_want[1], info_want[2], info_want[3]
                )
            }
        );
        for n in &notes {
            println!("  {n}");
        }
        let ok = same && info_ok && notes.is_empty() && shrink_ok;
        if ok {
            matched += 1;
        } else {
            mismatches += 1;
        }
        let released: Vec<&String> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Released(n) => Some(n),
                _ => None,
            })
            .collect();
        let made: Vec<&String> = ev
            .iter()
            .filter_map(|e| match e {
                Event::New(n) => Some(n),
                _ => None,
            })
            .collect();
        fig.emit(
            "step",
            serde_json::json!({"step": t, "label": label, "why": why, "moves": p,
                "textbook": want.json(), "rkmem": got.json(), "same": same,
                "slabinfo": {"active_objs": row.active_objs, "num_objs": row.num_objs,
                    "active_slabs": row.active_slabs, "num_slabs": row.num_slabs},
                "slabinfo_ok": info_ok, "new": made, "released": released,
                "objects": objects, "shrinker": shrink_fig}),
        )?;
    }
    if held.iter().any(|h| h.textbook != h.kernel) {
        mismatches += 1;
    }
    if mismatches == 0 {
        println!("\nlab slab: {matched} of {total} steps match the textbook");
        Ok(())
    } else {
        Err(format!(
            "{} of {total} steps differ from the textbook",
            total - matched
        ))
    }
}

/// Frees `count` (all if `None`) of the held objects the textbook put in slab `name`, the last
/// allocated first.
fn free_n(
    d: &Device,
    held: &mut Vec<Held>,
    model: &mut Model,
    ev: &mut Vec<Event>,
    name: &str,
    count: Option<u32>,
) -> Result<(), String> {
    let mut left = count.map_or(u32::MAX, |c| c);
    while left > 0 {
        let Some(pos) = held.iter().rposition(|h| h.textbook == name) else {
            if count.is_some() {
                return Err(format!(
                    "the script frees more objects of {name} than it holds"
                ));
            }
            break;
        };
        let h = held.remove(pos);
        model.free(name, ev)?;
        d.free(h.alloc.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", h.alloc.handle))?;
        left -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model through the whole script: the pictures the chapter's guest test expects.
    fn run(objects: u32, keep: u32) -> Vec<String> {
        let mut m = Model::new(objects, keep);
        let mut held: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (op, _) in script(objects, keep) {
            let mut ev = Vec::new();
            match op {
                Op::Alloc(n) => (0..n).for_each(|_| held.push(m.alloc(&mut ev))),
                Op::FillTo(s) => {
                    let n = s as u64 * u64::from(objects) - m.lists.in_use();
                    (0..n).for_each(|_| held.push(m.alloc(&mut ev)));
                }
                Op::Free(s, n) => {
                    for _ in 0..n {
                        let p = held.iter().rposition(|h| *h == s).unwrap();
                        held.remove(p);
                        m.free(&s, &mut ev).unwrap();
                    }
                }
                Op::FreeAll(s) => {
                    while let Some(p) = held.iter().rposition(|h| *h == s) {
                        held.remove(p);
                        m.free(&s, &mut ev).unwrap();
                    }
                }
                Op::Shrink => m.shrink(&mut ev),
            }
            out.push(m.lists.render(objects));
        }
        out
    }

    #[test]
    fn the_script_on_the_fast_kernels_layout() {
        // 4096-byte objects: 8 per slab, 6 empty slabs kept.
        let p = run(8, 6);
        assert_eq!(p.len(), 10 + 8 + 1);
        assert_eq!(p[0], "full: - | partial: A(1/8) | empty: -");
        assert_eq!(p[1], "full: A | partial: - | empty: -");
        assert_eq!(p[2], "full: C B A | partial: D(2/8) | empty: -");
        assert_eq!(p[3], "full: C A | partial: B(7/8) D(2/8) | empty: -");
        assert_eq!(p[4], "full: B C A | partial: D(2/8) | empty: -");
        assert_eq!(p[5], "full: B C | partial: D(2/8) | empty: A");
        assert_eq!(p[6], "full: B C | partial: D(3/8) | empty: A");
        assert_eq!(p[7], "full: B C | partial: - | empty: D A");
        assert_eq!(p[8], "full: B C | partial: D(1/8) | empty: A");
        assert_eq!(p[9], "full: H G F E A D B C | partial: - | empty: -");
        assert_eq!(p[10], "full: H G F E D B C | partial: - | empty: A");
        assert_eq!(p[15], "full: H G | partial: - | empty: F E D C B A");
        // The seventh and eighth slabs to empty go back at once: six are kept.
        assert_eq!(p[16], "full: H | partial: - | empty: F E D C B A");
        assert_eq!(p[17], "full: - | partial: - | empty: F E D C B A");
        assert_eq!(p[18], "full: - | partial: - | empty: -");
    }

    #[test]
    fn the_script_holds_on_other_layouts() {
        for (objects, keep) in [(3, 5), (4, 5), (7, 10), (16, 6)] {
            let p = run(objects, keep);
            assert_eq!(p.len(), 10 + keep as usize + 2 + 1);
            let last_free = &p[p.len() - 2];
            assert_eq!(last_free.matches(' ').count(), 7 + keep as usize - 1);
            assert!(p.last().unwrap().ends_with("empty: -"));
        }
    }

    #[test]
    fn paths_and_names() {
        let mut m = Model::new(2, 0);
        let mut ev = Vec::new();
        m.alloc(&mut ev);
        m.alloc(&mut ev);
        assert_eq!(paths(&ev), ["A: new -> partial -> full"]);
        let mut ev = Vec::new();
        m.free("A", &mut ev).unwrap();
        m.free("A", &mut ev).unwrap();
        assert_eq!(
            paths(&ev),
            ["A: full -> partial -> empty -> back to the buddy allocator"]
        );
        let mut m3 = Model::new(2, 6);
        let mut ev = Vec::new();
        (0..5).for_each(|_| {
            m3.alloc(&mut ev);
        });
        assert_eq!(
            paths(&ev),
            ["A, B: new -> partial -> full", "C: new -> partial"]
        );
        assert_eq!(slab_name(0), "A");
        assert_eq!(slab_name(25), "Z");
        assert_eq!(slab_name(26), "A2");
        assert_eq!(
            slabinfo_of(&m.lists, 2),
            [0, 0, 0, 0],
            "no slab left after the release"
        );
    }
}
