//! Peak resident memory (Linux `VmHWM`), for the tests that bound it.

/// Peak resident memory of process `pid`, in KiB; 0 once the process is gone.
pub fn peak_rss_kib(pid: u32) -> u64 {
    read_peak_kib(&format!("/proc/{pid}/status")).unwrap_or(0)
}

/// Peak resident memory of this test process, in KiB.
pub fn own_peak_rss_kib() -> u64 {
    read_peak_kib("/proc/self/status").expect("reading VmHWM from /proc/self/status")
}

fn read_peak_kib(status_file: &str) -> Option<u64> {
    std::fs::read_to_string(status_file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
