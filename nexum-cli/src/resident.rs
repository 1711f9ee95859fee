//! Letting go of the resident code pages start-up used.
//!
//! Parsing configuration, compiling components (on a first boot the whole compiler runs),
//! opening the store and connecting chains touch some 10–15 MiB of nexum's own machine
//! code, most of which a running engine does not execute until the next reload. Those
//! pages are clean and backed by the executable file, so the kernel may drop them under
//! memory pressure anyway — but until it does they count in the process's resident memory
//! (RSS), which is what operators read. Once booted, and after each reload, `nexum run`
//! drops every resident page of its code; those in use fault back in from the page cache.
//! This changes RSS, not the page cache a container is charged for. Only `nexum run` does
//! this: a service embedding `nexum-host` owns its process's memory.

/// Drops the resident pages of nexum's executable code (its `r-xp` mapping of its own
/// file) and returns how many bytes that mapping spans. Does nothing when a page of it was
/// ever written (text relocations, a debugger's breakpoints, uprobes: dropping would lose
/// them), when a debugger is attached, or off Linux.
pub fn release_startup_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let traced = std::fs::read_to_string("/proc/self/status").map_or(true, |status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .is_none_or(|pid| pid.trim() != "0")
        });
        if traced {
            return 0;
        }
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return 0;
        };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return 0;
        };
        code_mappings(&smaps, &exe.to_string_lossy())
            .into_iter()
            .map(|(start, end)| {
                #[allow(unsafe_code)]
                // SAFETY: the range is a whole private, read-only, executable mapping of the
                // executable file with no anonymous (copy-on-write) page: every page is the
                // file's, so MADV_DONTNEED loses nothing — pages are read back from the
                // file when next executed.
                let advised = unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
                };
                if advised == 0 { end - start } else { 0 }
            })
            .sum()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The address ranges of `exe`'s executable, private, read-only mappings in a
/// `/proc/<pid>/smaps` text whose pages are all still the file's (`Anonymous: 0 kB`).
/// Writable mappings are never listed (dropping their pages would lose what was written
/// to them), nor a code mapping with a written page.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn code_mappings(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    let mut chosen = Vec::new();
    // The mapping whose detail lines are being read, if it is a candidate.
    let mut candidate: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(anonymous) = line.strip_prefix("Anonymous:") {
            let clean = anonymous.trim().strip_suffix("kB").map(str::trim) == Some("0");
            if let Some(range) = candidate.take().filter(|_| clean) {
                chosen.push(range);
            }
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            // A detail line ("Rss:   12 kB").
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        // A new mapping: offset, device, inode, then the path (which may hold spaces).
        let path = line.splitn(6, ' ').nth(5).map(str::trim_start);
        candidate = (perms == "r-xp" && path == Some(exe) && end > start).then_some((start, end));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mappings as `/proc/<pid>/smaps` lists them (detail lines trimmed to the ones read).
    const SMAPS: &str = "\
55991a713000-55991b194000 r--p 00000000 fd:00 1234                       /opt/nexum/bin/nexum
Rss:                3636 kB
Anonymous:             0 kB
55991b194000-55991cf7a000 r-xp 00a80000 fd:00 1234                       /opt/nexum/bin/nexum
Rss:               15336 kB
Anonymous:             0 kB
55991cf7a000-55991d0a8000 r--p 02865000 fd:00 1234                       /opt/nexum/bin/nexum
Anonymous:          1208 kB
55991d0a8000-55991d0b0000 rw-p 02992000 fd:00 1234                       /opt/nexum/bin/nexum
Anonymous:            32 kB
7f4c28646000-7f4c2879c000 r-xp 00026000 fd:00 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f4c2879c000-7f4c287a0000 rwxp 00000000 00:00 0
Anonymous:            16 kB
7ffd1000-7ffd2000 r-xp 00000000 00:00 0                                  [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_the_executables_own_clean_code_mapping_is_chosen() {
        assert_eq!(
            code_mappings(SMAPS, "/opt/nexum/bin/nexum"),
            vec![(0x55991b194000, 0x55991cf7a000)]
        );
    }

    #[test]
    fn a_code_mapping_with_a_written_page_is_left_alone() {
        // Text relocations, a breakpoint or a uprobe leave a copy-on-write page behind.
        let written = SMAPS.replacen(
            "Rss:               15336 kB\nAnonymous:             0 kB",
            "Rss:               15336 kB\nAnonymous:             4 kB",
            1,
        );
        assert_eq!(code_mappings(&written, "/opt/nexum/bin/nexum"), vec![]);
    }

    #[test]
    fn a_path_with_spaces_or_a_replaced_binary_is_matched_exactly() {
        let smaps =
            "1000-2000 r-xp 00000000 fd:00 7     /opt/my tools/nexum (deleted)\nAnonymous: 0 kB\n";
        assert_eq!(
            code_mappings(smaps, "/opt/my tools/nexum (deleted)"),
            vec![(0x1000, 0x2000)]
        );
        assert_eq!(code_mappings(smaps, "/opt/my tools/nexum"), vec![]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn releasing_keeps_the_process_running() {
        // The real thing, on this test binary: its code pages are dropped, and running on
        // (the parsing below included) reads them back.
        assert!(release_startup_code() > 0);
        assert_eq!(code_mappings(SMAPS, "/opt/nexum/bin/nexum").len(), 1);
    }
}
