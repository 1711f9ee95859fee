//! Each module's chain of commits on a shared store, so that a commit whose answer was
//! lost is never made twice.
//!
//! A connection can fail after the database committed a call and before its answer came
//! back, and a statement can reach the database after its client gave up on it. Either
//! way the node cannot tell from the error whether the call's writes landed, and running
//! the call again could land them twice. So each commit of a module stores a token of its
//! own under the module's `commit/` key and applies only while the stored token is the one
//! this node last saw land (checked under the token row's lock). A node commits for a
//! module one commit at a time, and settles every commit in doubt before the next: it
//! moves the token on from the last one it saw land, which waits for a commit in flight
//! and leaves any still on its way unable to land; a stored token that is one of those in
//! doubt says which landed. Whoever made a commit in doubt can ask how it was settled, by
//! the id it gave it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many settled commits of a module are remembered for their makers to ask about.
const SETTLED_KEPT: usize = 64;

/// What this node knows of its modules' commit chains.
pub(crate) struct CommitChains {
    chains: Mutex<HashMap<String, Arc<Mutex<Chain>>>>,
    /// This process's id: with the sequence, it makes every token unique.
    instance: String,
    sequence: AtomicU64,
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

    /// `module`'s chain. Its lock is held for the whole of a commit: one at a time.
    pub fn of(&self, module: &str) -> Arc<Mutex<Chain>> {
        self.chains
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(module.to_string())
            .or_default()
            .clone()
    }
}

/// Locks a chain (a panic while it was held leaves it as it was: every change is whole).
pub(crate) fn lock(chain: &Mutex<Chain>) -> MutexGuard<'_, Chain> {
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

/// One module's chain, as of the lease epoch it was read under (a new epoch may follow
/// another node's commits, so it is read again).
#[derive(Default)]
pub(crate) struct Chain {
    epoch: Option<i64>,
    /// The token of the last commit known to have landed: the next one follows it.
    last: Option<Vec<u8>>,
    /// Commits that failed without an answer since `last`: their makers' ids and tokens.
    in_doubt: Vec<(u64, Vec<u8>)>,
    /// The token a settling of the doubts moved on to, while that is in doubt itself.
    moving_to: Option<Vec<u8>>,
    /// How the latest commits in doubt were settled: id, and whether it landed.
    settled: VecDeque<(u64, bool)>,
}

impl Chain {
    /// The token the next commit under lease `epoch` follows, if it is known.
    pub fn follows(&self, epoch: i64) -> Option<&[u8]> {
        self.last.as_deref().filter(|_| self.epoch == Some(epoch))
    }

    /// Starts the chain under `epoch` from the token the store holds. Commits in doubt
    /// under an earlier epoch can no longer land (their lease check fails): settled, the
    /// one whose token is stored as landed. (One that landed and was then overwritten by
    /// another node's commit reads as not landed; a worker never lives across an epoch
    /// change, so none asks.)
    pub fn begin(&mut self, epoch: i64, stored: Vec<u8>) {
        if self.epoch != Some(epoch) {
            let landed = self.doubt_with(&stored);
            self.settle_all(landed);
        }
        self.epoch = Some(epoch);
        self.last = Some(stored);
    }

    /// `token`'s commit landed.
    pub fn landed(&mut self, token: Vec<u8>) {
        self.last = Some(token);
    }

    /// The commit with `id` and `token` failed without an answer: it may have landed.
    pub fn lost(&mut self, id: u64, token: Vec<u8>) {
        self.in_doubt.push((id, token));
    }

    /// Whether a commit is in doubt.
    pub fn has_doubt(&self) -> bool {
        !self.in_doubt.is_empty()
    }

    /// Whether the commit with `id` is in doubt.
    pub fn is_in_doubt(&self, id: u64) -> bool {
        self.in_doubt.iter().any(|(doubted, _)| *doubted == id)
    }

    /// How the commit with `id` was settled, if it was in doubt and still remembered.
    pub fn settled(&self, id: u64) -> Option<bool> {
        self.settled
            .iter()
            .find(|(settled, _)| *settled == id)
            .map(|(_, landed)| *landed)
    }

    /// The token to settle the doubts by moving on to (see [`Chain::moved_on`]): the one
    /// an earlier try moved to, if its answer was lost (trying it again is harmless), else
    /// `fresh`. Until settled, finding it stored means a try moved it.
    pub fn moving_to(&mut self, fresh: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
        self.moving_to.get_or_insert_with(fresh).clone()
    }

    /// The token was moved on to `fresh` from the last one landed: no commit in doubt
    /// landed, and none can now.
    pub fn moved_on(&mut self, fresh: Vec<u8>) {
        self.settle_all(None);
        self.last = Some(fresh);
    }

    /// The store holds `stored`, not the last token landed: one of the commits in doubt
    /// landed if it is one of theirs, or an earlier moving on landed though its answer was
    /// lost; the chain goes on from it. Returns whether it was either.
    pub fn found(&mut self, stored: &[u8]) -> bool {
        if self.moving_to.as_deref() == Some(stored) {
            self.moved_on(stored.to_vec());
            return true;
        }
        let Some(id) = self.doubt_with(stored) else {
            return false;
        };
        self.settle_all(Some(id));
        self.last = Some(stored.to_vec());
        true
    }

    /// The id of the commit in doubt whose token is `token`.
    fn doubt_with(&self, token: &[u8]) -> Option<u64> {
        self.in_doubt
            .iter()
            .find(|(_, doubted)| doubted == token)
            .map(|(id, _)| *id)
    }

    /// Forgets the last token (read again before the next commit): the store holds one
    /// this node did not make.
    pub fn forget_last(&mut self) {
        self.last = None;
    }

    /// Every commit in doubt is settled: the one with `landed` landed, the others did not.
    fn settle_all(&mut self, landed: Option<u64>) {
        self.moving_to = None;
        for (id, _) in std::mem::take(&mut self.in_doubt) {
            if id != 0 {
                self.settled.push_back((id, Some(id) == landed));
            }
        }
        while self.settled.len() > SETTLED_KEPT {
            self.settled.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Chain, CommitChains, SETTLED_KEPT};

    #[test]
    fn tokens_are_unique_and_each_module_has_one_chain() {
        let chains = CommitChains::new("node");
        assert_ne!(chains.next_token(), chains.next_token());
        assert!(std::sync::Arc::ptr_eq(&chains.of("m"), &chains.of("m")));
        assert!(!std::sync::Arc::ptr_eq(&chains.of("m"), &chains.of("n")));
    }

    #[test]
    fn a_chain_is_read_again_under_a_new_epoch_and_its_old_doubts_did_not_land() {
        let mut chain = Chain::default();
        assert_eq!(chain.follows(1), None);
        chain.begin(1, b"a".to_vec());
        assert_eq!(chain.follows(1), Some(&b"a"[..]));
        assert_eq!(chain.follows(2), None);
        chain.lost(7, b"b".to_vec());
        chain.begin(2, b"a".to_vec());
        assert!(!chain.has_doubt());
        assert_eq!(chain.settled(7), Some(false));
        // One that landed before the lease changed hands is found.
        chain.lost(8, b"c".to_vec());
        chain.begin(3, b"c".to_vec());
        assert_eq!(chain.settled(8), Some(true));
    }

    #[test]
    fn a_moving_on_whose_answer_was_lost_is_found() {
        let mut chain = Chain::default();
        chain.begin(1, b"a".to_vec());
        chain.lost(1, b"b".to_vec());
        assert_eq!(chain.moving_to(|| b"r".to_vec()), b"r");
        assert_eq!(chain.moving_to(|| b"s".to_vec()), b"r", "the same again");
        assert!(chain.found(b"r"));
        assert_eq!(chain.settled(1), Some(false));
        assert_eq!(chain.follows(1), Some(&b"r"[..]));
    }

    #[test]
    fn a_stored_token_in_doubt_is_the_one_that_landed() {
        let mut chain = Chain::default();
        chain.begin(1, b"a".to_vec());
        chain.lost(1, b"b".to_vec());
        chain.lost(2, b"c".to_vec());
        assert!(chain.is_in_doubt(1) && chain.is_in_doubt(2) && !chain.is_in_doubt(3));
        assert!(!chain.found(b"x"), "a token this node never made");
        assert!(chain.has_doubt());
        assert!(chain.found(b"c"));
        assert!(!chain.has_doubt());
        assert_eq!(
            (chain.settled(1), chain.settled(2)),
            (Some(false), Some(true))
        );
        assert_eq!(chain.follows(1), Some(&b"c"[..]));
    }

    #[test]
    fn moving_the_token_on_settles_every_doubt_as_not_landed() {
        let mut chain = Chain::default();
        chain.begin(1, b"a".to_vec());
        chain.lost(1, b"b".to_vec());
        chain.moved_on(b"r".to_vec());
        assert_eq!(chain.settled(1), Some(false));
        assert_eq!(chain.follows(1), Some(&b"r"[..]));
    }

    #[test]
    fn only_the_latest_settlements_are_kept() {
        let mut chain = Chain::default();
        chain.begin(1, b"a".to_vec());
        for id in 1..=(SETTLED_KEPT as u64 + 10) {
            chain.lost(id, format!("t{id}").into_bytes());
            chain.moved_on(format!("r{id}").into_bytes());
        }
        assert_eq!(chain.settled(1), None);
        assert_eq!(chain.settled(SETTLED_KEPT as u64 + 10), Some(false));
    }
}
