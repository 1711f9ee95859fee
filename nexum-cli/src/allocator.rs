//! How many heaps glibc's allocator keeps.
//!
//! glibc gives threads that contend for its heap arenas of their own, up to eight per core,
//! and memory freed into an arena stays with it. `nexum run`'s allocations are small and
//! spread over a handful of threads (the runtime's workers, the store's, the deadline
//! watchdog), so each arena ends up holding its own idle megabytes: on the 12,000-log
//! workload four arenas held 15 MiB. Two arenas keep that down at no measured cost in CPU.
//! An operator's own `MALLOC_ARENA_MAX` or `glibc.malloc.arena_max` tunable wins.

/// Arenas `nexum` asks glibc for, unless the environment says otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's arenas at [`ARENAS`]; call before any thread starts. Does nothing with
/// another allocator, or when the environment already sets a cap.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc ignores a value that is not a positive number; so does this check.
        let set_by_operator = std::env::var("MALLOC_ARENA_MAX")
            .is_ok_and(|v| v.trim().parse::<u32>().is_ok_and(|n| n > 0))
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !set_by_operator {
            // SAFETY: `mallopt` only changes allocator settings; no thread is running yet.
            #[allow(unsafe_code)]
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            }
        }
    }
}
