// SPDX-License-Identifier: GPL-2.0

//! Validation of the module parameters, done once at load.
//!
//! A bad value makes the load fail with `EINVAL` and one message that names the parameter, the
//! value and the rule it breaks.

use core::fmt;

/// The arena grows and shrinks in blocks of this many MiB (one order-10 block of 4 KiB pages).
pub const ARENA_BLOCK_MB: u32 =
    ((super::sizeclass::PAGE_SIZE << super::buddy::MAX_ORDER_LIMIT) >> 20) as u32;

/// The largest per-file cap, in MiB.
pub const FILE_MAX_MB_LIMIT: u32 = 65536;

/// The arena may take at most this share of the machine's RAM: 1/2.
pub const ARENA_MAX_RAM_DIVISOR: u64 = 2;

/// The module parameters, as given at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// MiB of memory the arena takes from the host kernel at load.
    pub arena_initial_mb: u32,
    /// MiB the arena may grow to on demand.
    pub arena_max_mb: u32,
    /// MiB one open file of /dev/rkmem may hold at once (over it: `EDQUOT`).
    pub file_max_mb: u32,
}

impl Params {
    /// The values used when no parameter is given.
    pub const DEFAULT: Params = Params {
        arena_initial_mb: 4,
        arena_max_mb: 64,
        file_max_mb: 128,
    };
}

/// Why a parameter was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// The value is not a multiple of [`ARENA_BLOCK_MB`].
    NotBlockMultiple {
        /// Parameter name.
        name: &'static str,
        /// The value given.
        value: u32,
    },
    /// `arena_max_mb` is zero: the arena could hold nothing.
    MaxZero,
    /// `arena_initial_mb` is larger than `arena_max_mb`.
    InitialAboveMax {
        /// `arena_initial_mb`.
        initial: u32,
        /// `arena_max_mb`.
        max: u32,
    },
    /// `file_max_mb` is 0 or above [`FILE_MAX_MB_LIMIT`].
    FileMax {
        /// The value given.
        value: u32,
    },
    /// `arena_max_mb` is more than the share of RAM the arena may take.
    MaxAboveRam {
        /// `arena_max_mb`.
        max: u32,
        /// The largest allowed value on this machine.
        limit: u64,
    },
}

impl ParamError {
    /// The name of the parameter at fault.
    pub fn parameter(&self) -> &'static str {
        match self {
            ParamError::NotBlockMultiple { name, .. } => name,
            ParamError::MaxZero | ParamError::MaxAboveRam { .. } => "arena_max_mb",
            ParamError::InitialAboveMax { .. } => "arena_initial_mb",
            ParamError::FileMax { .. } => "file_max_mb",
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParamError::NotBlockMultiple { name, value } => write!(
                f,
                "{name}={value}: must be a multiple of {ARENA_BLOCK_MB} (the arena grows in {ARENA_BLOCK_MB} MiB blocks)"
            ),
            ParamError::MaxZero => write!(f, "arena_max_mb=0: must be at least {ARENA_BLOCK_MB}"),
            ParamError::InitialAboveMax { initial, max } => write!(
                f,
                "arena_initial_mb={initial}: must not exceed arena_max_mb={max}"
            ),
            ParamError::FileMax { value } => write!(
                f,
                "file_max_mb={value}: must be 1..={FILE_MAX_MB_LIMIT}"
            ),
            ParamError::MaxAboveRam { max, limit } => write!(
                f,
                "arena_max_mb={max}: more than 1/{ARENA_MAX_RAM_DIVISOR} of RAM (at most {limit} on this machine)"
            ),
        }
    }
}

/// Checks `p` on a machine with `total_ram_mb` MiB of RAM. The first rule broken is reported.
pub fn validate(p: &Params, total_ram_mb: u64) -> Result<(), ParamError> {
    for (name, value) in [
        ("arena_initial_mb", p.arena_initial_mb),
        ("arena_max_mb", p.arena_max_mb),
    ] {
        if value % ARENA_BLOCK_MB != 0 {
            return Err(ParamError::NotBlockMultiple { name, value });
        }
    }
    if p.arena_max_mb == 0 {
        return Err(ParamError::MaxZero);
    }
    if p.arena_initial_mb > p.arena_max_mb {
        return Err(ParamError::InitialAboveMax {
            initial: p.arena_initial_mb,
            max: p.arena_max_mb,
        });
    }
    if p.file_max_mb == 0 || p.file_max_mb > FILE_MAX_MB_LIMIT {
        return Err(ParamError::FileMax {
            value: p.file_max_mb,
        });
    }
    let block = u64::from(ARENA_BLOCK_MB);
    let limit = total_ram_mb / ARENA_MAX_RAM_DIVISOR / block * block;
    if u64::from(p.arena_max_mb) > limit {
        return Err(ParamError::MaxAboveRam {
            max: p.arena_max_mb,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(arena_initial_mb: u32, arena_max_mb: u32) -> Params {
        Params {
            arena_initial_mb,
            arena_max_mb,
            file_max_mb: 128,
        }
    }

    #[test]
    fn file_cap_bounds() {
        for (v, ok) in [(0, false), (1, true), (65536, true), (65537, false)] {
            let q = Params {
                file_max_mb: v,
                ..Params::DEFAULT
            };
            assert_eq!(validate(&q, 512).is_ok(), ok, "file_max_mb={v}");
        }
        let e = validate(
            &Params {
                file_max_mb: 0,
                ..Params::DEFAULT
            },
            512,
        )
        .unwrap_err();
        assert_eq!(e.parameter(), "file_max_mb");
    }

    #[test]
    fn defaults_are_valid_in_a_512_mib_guest() {
        assert_eq!(validate(&Params::DEFAULT, 512), Ok(()));
    }

    #[test]
    fn each_rule_names_its_parameter() {
        let e = validate(&p(6, 64), 512).unwrap_err();
        assert_eq!(
            e,
            ParamError::NotBlockMultiple {
                name: "arena_initial_mb",
                value: 6
            }
        );
        assert_eq!(e.parameter(), "arena_initial_mb");

        let e = validate(&p(4, 10), 512).unwrap_err();
        assert_eq!(e.parameter(), "arena_max_mb");

        assert_eq!(validate(&p(0, 0), 512), Err(ParamError::MaxZero));
        assert_eq!(
            validate(&p(8, 4), 512),
            Err(ParamError::InitialAboveMax { initial: 8, max: 4 })
        );
        assert_eq!(
            validate(&p(4, 260), 512),
            Err(ParamError::MaxAboveRam {
                max: 260,
                limit: 256
            })
        );
        assert_eq!(validate(&p(0, 256), 512), Ok(()));
    }

    #[test]
    fn messages_say_why() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            validate(&p(4, 10), 512).unwrap_err().to_string(),
            "arena_max_mb=10: must be a multiple of 4 (the arena grows in 4 MiB blocks)"
        );
        assert_eq!(
            validate(&p(8, 4), 512).unwrap_err().to_string(),
            "arena_initial_mb=8: must not exceed arena_max_mb=4"
        );
    }

    proptest! {
        // Whatever is accepted respects every rule; whatever breaks a rule is refused.
        #[test]
        fn accepted_iff_all_rules_hold(init in 0u32..2048, max in 0u32..2048, ram in 0u64..8192) {
            let ok = init % 4 == 0
                && max % 4 == 0
                && max > 0
                && init <= max
                && u64::from(max) <= ram / 2;
            prop_assert_eq!(validate(&p(init, max), ram).is_ok(), ok);
        }
    }
}
