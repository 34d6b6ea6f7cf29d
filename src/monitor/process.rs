//! The process's own resource use, read from `/proc` (Linux): no crate
//! needed for one number.

/// Resident set size in bytes (`VmRSS` in `/proc/self/status`); `None`
/// where `/proc` is not there to read.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    // "VmRSS:	   13956 kB"
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tcstowatch\nVmPeak:\t  20000 kB\nVmRSS:\t   13956 kB\nThreads:\t5\n";
        assert_eq!(parse_vm_rss(status), Some(13956 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(resident_bytes().unwrap() > 0);
        }
    }
}
