//! Child processes of `nexum dev` (builds, the local chain) die with it — also when it is
//! killed outright and no destructor runs — so an author's machine keeps no stray Anvil.

use tokio::process::Command;

/// Asks Linux to SIGKILL the child when the thread that starts it ends. Start children from
/// the main thread (the `dev` future runs there), which lives as long as the process. It
/// reaches the child only, not what the child starts: see [`BuildGroup`].
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

/// A build and everything it starts (npm → node → componentize-js, cargo → rustc, pip),
/// in a process group of its own that is killed whole when this is dropped: a stop or a
/// newer build must not leave a compiler writing into the module's folder. (A terminal's
/// ctrl-c no longer reaches the group; `nexum dev` hears it and drops this.)
pub struct BuildGroup {
    leader: Option<u32>,
}

impl BuildGroup {
    /// Puts `command`'s child in a new process group, led by it.
    pub fn prepare(command: &mut Command) -> &mut Command {
        command.process_group(0)
    }

    /// The group led by the child with process id `leader`.
    pub fn led_by(leader: Option<u32>) -> Self {
        Self { leader }
    }

    /// The build ended and its leader was reaped: nothing to kill, and its id may soon be
    /// another process's.
    pub fn ended(mut self) {
        self.leader = None;
    }
}

impl Drop for BuildGroup {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(group) = self.leader.and_then(|pid| i32::try_from(pid).ok()) {
            #[allow(unsafe_code)]
            // SAFETY: killpg only sends a signal; a group that is gone is ESRCH, ignored.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }
}
