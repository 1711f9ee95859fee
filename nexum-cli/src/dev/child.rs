//! Child processes of `nexum dev` (builds, the local chain) die with it — also when it is
//! killed outright and no destructor runs — so an author's machine keeps no stray Anvil.

use tokio::process::Command;

/// Asks Linux to SIGKILL the child when the thread that starts it ends. Start children from
/// the main thread (the `dev` future runs there), which lives as long as the process.
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        #[allow(unsafe_code)]
        // SAFETY: `pre_exec` runs in the forked child before exec; prctl is async-signal-safe
        // and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command.kill_on_drop(true)
}
