// SPDX-License-Identifier: GPL-2.0

//! rkmemctl: drives the rkmem module from user space over `/dev/rkmem` and reads
//! `/proc/rkmem`.

#[path = "../../../rust/uapi.rs"]
#[allow(dead_code)]
mod uapi;

mod dev;
mod selftest;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rkmemctl",
    version,
    about = "Drive the rkmem kernel module over /dev/rkmem"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ask the module for its ABI version and features, and check them against this program.
    Version,
    /// Print /proc/rkmem/stats.
    Stats,
    /// Run the interface tests against the loaded module; prints `N passed, N failed`.
    Test {
        /// Run only tests whose name contains this text.
        filter: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Version => version(),
        Cmd::Stats => print_file("/proc/rkmem/stats"),
        Cmd::Test { filter } => return selftest::run(filter.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkmemctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn version() -> Result<(), String> {
    let d = dev::Device::open().map_err(|e| format!("{}: {e}", dev::DEV_PATH))?;
    let v = d.version().map_err(|e| format!("RKMEM_IOC_VERSION: {e}"))?;
    println!(
        "rkmem module {}.{}.{}, ABI {}, features {:#x}",
        v.major, v.minor, v.patch, v.abi_version, v.features
    );
    dev::check_abi(&v)?;
    println!("ABI matches rkmemctl (ABI {})", uapi::RKMEM_ABI_VERSION);
    Ok(())
}

fn print_file(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    print!("{text}");
    Ok(())
}
