// SPDX-License-Identifier: GPL-2.0

//! A registry of objects that open files create and own: the user caches (`caches`) and the
//! mempools (`mempool`). One list behind the caller's mutex, a bound on its length, lookup by
//! (id, owner), removal that the object may refuse, and removal of everything a closing file
//! owned.

use kernel::{prelude::*, sync::Arc};

/// What a registry needs to know of its objects.
pub(crate) trait Owned {
    /// The object's id (unique among live objects of its kind).
    fn id(&self) -> u32;
    /// The open file that owns it.
    fn owner(&self) -> u64;
}

/// Objects of type `T`, at most `MAX` of them.
pub(crate) struct Registry<T: Owned, const MAX: usize> {
    list: KVec<Arc<T>>,
}

impl<T: Owned, const MAX: usize> Registry<T, MAX> {
    /// No objects.
    pub(crate) const fn new() -> Self {
        Registry { list: KVec::new() }
    }

    /// Whether one more object may be added (`ENOSPC` otherwise).
    pub(crate) fn check_room(&self) -> Result {
        if self.list.len() >= MAX {
            Err(ENOSPC)
        } else {
            Ok(())
        }
    }

    /// Adds `obj` (`ENOSPC` past `MAX`).
    pub(crate) fn push(&mut self, obj: Arc<T>) -> Result {
        self.check_room()?;
        self.list.push(obj, GFP_KERNEL)?;
        Ok(())
    }

    /// The object `id` of `owner`.
    pub(crate) fn find(&self, id: u32, owner: u64) -> Option<Arc<T>> {
        self.list
            .iter()
            .find(|o| o.id() == id && o.owner() == owner)
            .cloned()
    }

    /// Removes object `id` of `owner` if `may_go` agrees: `ENOENT` if there is none, else
    /// `may_go`'s error.
    pub(crate) fn remove(
        &mut self,
        id: u32,
        owner: u64,
        may_go: impl FnOnce(&T) -> Result,
    ) -> Result {
        let pos = self
            .list
            .iter()
            .position(|o| o.id() == id && o.owner() == owner)
            .ok_or(ENOENT)?;
        may_go(&self.list[pos])?;
        self.list.remove(pos)?;
        Ok(())
    }

    /// Removes every object of `owner` (its file is closing).
    pub(crate) fn remove_owned(&mut self, owner: u64) {
        self.list.retain(|o| o.owner() != owner);
    }

    /// Every object, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<T>> {
        self.list.iter()
    }
}
