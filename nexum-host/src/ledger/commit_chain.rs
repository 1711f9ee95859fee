//! Each module's chain of commits on a shared store, so that a commit whose answer was
//! lost is never made twice.
//!
//! A connection can fail after the database committed a call and before its answer came
//! back, and a statement can reach the database after its client gave up on it. Either
//! way the node cannot tell from the error whether the call's writes landed, and running
//! the call again could land them twice. So each commit of a module stores a token of its
//! own under the module's `commit/` key and applies only while the stored token is the one
//! this node last saw land (checked under the token row's lock): of the commits made for
//! one turn, at most one lands, and a stored token that is one of those in doubt says
//! which.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What this node knows of its modules' commit chains.
pub(crate) struct CommitChains {
    chains: Mutex<HashMap<String, Chain>>,
    /// This process's id: with the sequence, it makes every token unique.
    instance: String,
    sequence: AtomicU64,
}

/// One module's chain, as of the lease epoch it was read under (a new epoch may follow
/// another node's commits, so it is read again).
struct Chain {
    epoch: i64,
    /// The token of the last commit known to have landed: the next one follows it.
    last: Vec<u8>,
    /// Tokens of commits that failed without an answer, made after `last`.
    in_doubt: Vec<Vec<u8>>,
}

/// What the token stored for a module says about its commits in doubt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// One of them landed: it is the chain's last now.
    Landed,
    /// None has landed (yet: one still on its way would be refused once the next lands).
    NotLanded,
    /// The stored token is none this node made: its chain is no longer this node's.
    Elsewhere,
}

impl CommitChains {
    pub fn new(instance: &str) -> Self {
        Self {
            chains: Mutex::default(),
            instance: instance.to_string(),
            sequence: AtomicU64::new(0),
        }
    }

    /// A token no other commit has.
    pub fn next_token(&self) -> Vec<u8> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.instance).into_bytes()
    }

    /// The token the next commit of `module` under lease `epoch` follows, if known.
    pub fn follows(&self, module: &str, epoch: i64) -> Option<Vec<u8>> {
        self.lock()
            .get(module)
            .filter(|chain| chain.epoch == epoch)
            .map(|chain| chain.last.clone())
    }

    /// Starts `module`'s chain under `epoch` from the token the store holds.
    pub fn begin(&self, module: &str, epoch: i64, stored: Vec<u8>) {
        self.lock().insert(
            module.to_string(),
            Chain {
                epoch,
                last: stored,
                in_doubt: Vec::new(),
            },
        );
    }

    /// `token`'s commit landed.
    pub fn landed(&self, module: &str, token: Vec<u8>) {
        if let Some(chain) = self.lock().get_mut(module) {
            chain.last = token;
            chain.in_doubt.clear();
        }
    }

    /// `token`'s commit failed without an answer: it may have landed.
    pub fn lost(&self, module: &str, token: Vec<u8>) {
        if let Some(chain) = self.lock().get_mut(module) {
            chain.in_doubt.push(token);
        }
    }

    /// Whether a commit of `module` is in doubt.
    pub fn has_doubt(&self, module: &str) -> bool {
        self.lock()
            .get(module)
            .is_some_and(|chain| !chain.in_doubt.is_empty())
    }

    /// Reads `stored`, the token the store holds for `module` now.
    pub fn settle(&self, module: &str, stored: Option<&[u8]>) -> Settled {
        let mut chains = self.lock();
        let Some(chain) = chains.get_mut(module) else {
            return Settled::Elsewhere;
        };
        match stored {
            Some(stored) if chain.in_doubt.iter().any(|t| t == stored) => {
                chain.last = stored.to_vec();
                chain.in_doubt.clear();
                Settled::Landed
            }
            Some(stored) if chain.last == stored => Settled::NotLanded,
            _ => {
                chains.remove(module);
                Settled::Elsewhere
            }
        }
    }

    /// Forgets `module`'s chain (its lease is gone): it is read again under the next one.
    pub fn forget(&self, module: &str) {
        self.lock().remove(module);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Chain>> {
        self.chains.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::{CommitChains, Settled};

    #[test]
    fn tokens_are_unique() {
        let chains = CommitChains::new("node");
        assert_ne!(chains.next_token(), chains.next_token());
    }

    #[test]
    fn a_chain_is_read_again_under_a_new_epoch() {
        let chains = CommitChains::new("node");
        chains.begin("m", 1, b"a".to_vec());
        assert_eq!(chains.follows("m", 1), Some(b"a".to_vec()));
        assert_eq!(chains.follows("m", 2), None);
    }

    #[test]
    fn a_stored_token_in_doubt_settles_it_as_landed() {
        let chains = CommitChains::new("node");
        chains.begin("m", 1, b"a".to_vec());
        chains.lost("m", b"b".to_vec());
        chains.lost("m", b"c".to_vec());
        assert!(chains.has_doubt("m"));
        assert_eq!(chains.settle("m", Some(b"a")), Settled::NotLanded);
        assert!(chains.has_doubt("m"), "a commit on its way may still land");
        assert_eq!(chains.settle("m", Some(b"c")), Settled::Landed);
        assert!(!chains.has_doubt("m"));
        assert_eq!(chains.follows("m", 1), Some(b"c".to_vec()));
    }

    #[test]
    fn a_token_this_node_never_made_ends_its_chain() {
        let chains = CommitChains::new("node");
        chains.begin("m", 1, b"a".to_vec());
        chains.lost("m", b"b".to_vec());
        assert_eq!(chains.settle("m", Some(b"x")), Settled::Elsewhere);
        assert_eq!(chains.follows("m", 1), None);
        assert_eq!(chains.settle("m", None), Settled::Elsewhere);
    }

    #[test]
    fn a_landed_commit_clears_the_doubt() {
        let chains = CommitChains::new("node");
        chains.begin("m", 1, b"a".to_vec());
        chains.lost("m", b"b".to_vec());
        chains.landed("m", b"c".to_vec());
        assert!(!chains.has_doubt("m"));
        assert_eq!(chains.follows("m", 1), Some(b"c".to_vec()));
    }
}
