//! Link-time layout of the release executable, for a small resident set at
//! idle (issue 13: idle RSS with the shipped 3 feeds).
//!
//! The service's resident memory was mostly pages of its own executable:
//! the code that start-up, a poll and a digest run is 3.6 MB spread over
//! 11 MB of text, and the kernel maps 64 KiB around every page that faults,
//! so nearly all of the text ended up mapped. Two linker options fix that
//! without changing any code:
//!
//! - `--symbol-ordering-file=linker/hot-functions.txt` places the functions
//!   a real service run executes (listed by `benches/hot_functions.sh` from
//!   a callgrind run) together at the start of `.text`, so the rest of the
//!   code is never touched and never mapped. A function missing from the
//!   list (new code, or a dependency upgrade that renamed its symbols) is
//!   only placed after the listed ones: the list going stale costs memory,
//!   never correctness.
//! - `-z pack-relative-relocs` stores the executable's ~41,000 relative
//!   relocations as DT_RELR bitmaps (a few KiB) instead of a 1 MB
//!   `.rela.dyn` that the dynamic loader reads in whole at every start.
//!   Only glibc 2.36 or newer runs such executables (Debian 12, Ubuntu
//!   22.10), and LLD marks the executable as needing it, so the option is
//!   given only when the glibc of the build is that new: an executable
//!   built on an older system still runs there.
//!
//! Only release builds of the executable on x86_64 Linux with glibc get
//! them, and only when the toolchain links those with its own LLD (the
//! default since Rust 1.90, unless the user chose a linker), which knows
//! both options; debug builds, other targets and other linkers link as before.

use std::env;

fn main() {
    let order_file = "linker/hot-functions.txt";
    println!("cargo:rerun-if-changed={order_file}");
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    if !release || target != "x86_64-unknown-linux-gnu" || !links_with_default_lld() {
        return;
    }
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={manifest_dir}/{order_file}");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the executable will be linked by the toolchain's own LLD, which
/// knows `--symbol-ordering-file`: rustc 1.90 or newer (our minimum is
/// 1.89, whose default is the system's `ld`, which does not) with no linker
/// chosen by the user (a `CARGO_TARGET_*_LINKER`, or `-C linker` /
/// `link-arg`s in RUSTFLAGS). Otherwise the build links as before: the
/// layout is an optimisation and must never break a release build.
fn links_with_default_lld() -> bool {
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    if env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "link-arg", "link-self-contained", "fuse-ld"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(output) = std::process::Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&output.stdout);
    major_minor(text.split_whitespace().nth(1).unwrap_or_default()).is_some_and(|v| v >= (1, 90))
}

/// Whether the build's glibc (`getconf GNU_LIBC_VERSION`, e.g. "glibc 2.36")
/// is at least `major.minor`; false when it cannot be told.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(output) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    major_minor(text.trim().trim_start_matches("glibc ")).is_some_and(|v| v >= (major, minor))
}

/// The first two numbers of a dotted version ("1.95.0", "2.36").
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}
