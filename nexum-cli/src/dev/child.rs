//! Child processes of `nexum dev` (builds, the local chain) die with it — also when it is
//! killed outright and no destructor runs — so an author's machine keeps no stray Anvil.
//! One exception: `rustup target add` (see `project.rs`) is left to finish, as a cut
//! install can break the toolchain.

use std::process::ExitStatus;
use tokio::process::{Child, Command};

/// Asks Linux to SIGKILL the child when the thread that starts it ends. Start children from
/// the main thread (the `dev` future runs there), which lives as long as the process. It
/// reaches the child only, not what the child starts: see [`Build`].
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
/// in a process group of its own that is killed whole when this is dropped before the build
/// ended: a stop or a newer build must not leave a compiler writing into the module's
/// folder. (A terminal's ctrl-c no longer reaches the group; `nexum dev` hears it and drops
/// this.)
pub struct Build {
    pub child: Child,
    /// The group to kill; none once the build ended (its id may soon be another's).
    group: Option<u32>,
}

impl Build {
    /// Starts `command` as the leader of a new process group that dies with `nexum dev`.
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.process_group(0);
        let child = die_with_parent(command).spawn()?;
        Ok(Self {
            group: child.id(),
            child,
        })
    }

    /// Waits for the build to end.
    pub async fn wait(mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.group = None;
        Ok(status)
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(group) = self.group.and_then(|pid| i32::try_from(pid).ok()) {
            #[allow(unsafe_code)]
            // SAFETY: killpg only sends a signal. The leader is not reaped yet (its id
            // cannot have been reused); a group that is gone is ESRCH, ignored.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }
}
