// SPDX-License-Identifier: GPL-2.0

//! Text of the /proc/rkmem files, rendered into any [`core::fmt::Write`].
//!
//! The module renders into its seq_file, the host tests into a `String`: the exact bytes a user
//! reads are tested on the host.

use core::fmt::{self, Write};

/// A `/proc/vmstat`-style record: one `name value` pair per line.
pub fn write_counters<W: Write>(w: &mut W, counters: &[(&str, u64)]) -> fmt::Result {
    for (name, value) in counters {
        writeln!(w, "{name} {value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;

    #[test]
    fn counters_are_vmstat_lines() {
        let mut s = String::new();
        write_counters(&mut s, &[("abi_version", 1), ("opens", 12)]).unwrap();
        assert_eq!(s, "abi_version 1\nopens 12\n");
    }

    #[test]
    fn no_counters_no_text() {
        let mut s = String::new();
        write_counters(&mut s, &[]).unwrap();
        assert!(s.is_empty());
    }
}
