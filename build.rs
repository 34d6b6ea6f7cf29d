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
//! them: the toolchain links those with LLD (the default since Rust 1.90),
//! which knows both options; debug builds and other targets link as before.

use std::env;

fn main() {
    let order_file = "linker/hot-functions.txt";
    println!("cargo:rerun-if-changed={order_file}");
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    if !release || target != "x86_64-unknown-linux-gnu" {
        return;
    }
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={manifest_dir}/{order_file}");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
    let mut parts = text.trim().trim_start_matches("glibc ").split('.');
    let number = |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok());
    match (number(parts.next()), number(parts.next())) {
        (Some(have_major), Some(have_minor)) => (have_major, have_minor) >= (major, minor),
        _ => false,
    }
}
