//! Letting go of the code pages only start-up used.
//!
//! Parsing configuration, compiling components (on a first boot the whole compiler runs),
//! opening the store and connecting chains touch some 10–15 MiB of nexum's own machine
//! code that a running engine never executes again. Those pages are clean and backed by
//! the executable file, so the kernel may drop them under memory pressure anyway — but
//! until it does they count in the process's resident memory, which is what operators
//! read. Once booted, `nexum run` unmaps them; what running needs comes back on first use,
//! from the page cache. Only `nexum run` does this: a service embedding `nexum-host` owns
//! its process's memory.

/// Drops the resident pages of nexum's executable code (its `r-xp` mapping of its own
/// file) and returns how many bytes that mapping spans. Linux only; elsewhere nothing.
pub fn release_startup_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return 0;
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return 0;
        };
        code_mappings(&maps, &exe.to_string_lossy())
            .map(|(start, end)| {
                #[allow(unsafe_code)]
                // SAFETY: the range is a whole private, read-only, executable mapping of the
                // executable file: its pages are never written, so MADV_DONTNEED loses
                // nothing — they are read back from the file when next executed.
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
/// `/proc/<pid>/maps` text. Writable mappings are never listed (dropping their pages would
/// lose what was written to them).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn code_mappings<'a>(maps: &'a str, exe: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    maps.lines().filter_map(move |line| {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let perms = fields.next()?;
        // offset, device, inode, then the path (which may hold spaces).
        let path = line.splitn(6, char::is_whitespace).nth(5)?.trim_start();
        if perms != "r-xp" || path != exe {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (end > start).then_some((start, end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55991a713000-55991b194000 r--p 00000000 fd:00 1234 /opt/nexum/bin/nexum
55991b194000-55991cf7a000 r-xp 00a80000 fd:00 1234 /opt/nexum/bin/nexum
55991cf7a000-55991d0a8000 r--p 02865000 fd:00 1234 /opt/nexum/bin/nexum
55991d0a8000-55991d0b0000 rw-p 02992000 fd:00 1234 /opt/nexum/bin/nexum
7f4c28646000-7f4c2879c000 r-xp 00026000 fd:00 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7f4c2879c000-7f4c287a0000 rwxp 00000000 00:00 0
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 [vdso]
";

    #[test]
    fn only_the_executables_own_code_mapping_is_chosen() {
        let chosen: Vec<_> = code_mappings(MAPS, "/opt/nexum/bin/nexum").collect();
        assert_eq!(chosen, vec![(0x55991b194000, 0x55991cf7a000)]);
    }

    #[test]
    fn a_path_with_spaces_or_a_replaced_binary_is_matched_exactly() {
        let maps = "1000-2000 r-xp 00000000 fd:00 7 /opt/my tools/nexum (deleted)\n";
        assert_eq!(
            code_mappings(maps, "/opt/my tools/nexum (deleted)").count(),
            1
        );
        assert_eq!(code_mappings(maps, "/opt/my tools/nexum").count(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn releasing_keeps_the_process_running() {
        // The real thing, on this test binary: its code pages are dropped, and running on
        // (the parsing below included) reads them back.
        assert!(release_startup_code() > 0);
        assert_eq!(code_mappings(MAPS, "/opt/nexum/bin/nexum").count(), 1);
    }
}
