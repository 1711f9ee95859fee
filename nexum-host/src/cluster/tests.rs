//! Placement, leases and fencing against a real PostgreSQL (the test run's server, a fresh
//! database per test), and the shared storage answering exactly as the embedded one.

use super::{leases, owner};
use crate::ledger::storage::{Batch, Space, Storage, StoreError};
use crate::ledger::{Bookkeeping, HeldLeases, Ledger, PostgresStorage, memory::MemoryStorage};
use nexum_core::ModuleName;
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

fn nodes(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn every_module_has_one_owner_and_a_leaving_node_moves_only_its_own() {
    let three = nodes(&["a", "b", "c"]);
    let modules: Vec<String> = (0..60).map(|i| format!("m{i}")).collect();
    let placed: Vec<&str> = modules.iter().map(|m| owner(m, &three).unwrap()).collect();
    for node in ["a", "b", "c"] {
        let share = placed.iter().filter(|o| **o == node).count();
        assert!((10..=30).contains(&share), "{node} got {share} of 60");
    }
    let two = nodes(&["a", "c"]);
    for (module, before) in modules.iter().zip(&placed) {
        let after = owner(module, &two).unwrap();
        if *before != "b" {
            assert_eq!(after, *before, "{module} moved though its node stayed");
        }
    }
    assert_eq!(owner("m0", &[]), None);
}

/// A node of the cluster on `url`: its storage and the leases it holds.
fn node(url: &str, name: &str) -> (Arc<PostgresStorage>, Arc<HeldLeases>) {
    let held = Arc::new(HeldLeases::default());
    let db = PostgresStorage::open(url, name, held.clone()).expect("opening the shared store");
    (Arc::new(db), held)
}

/// Takes `module`'s free lease for node `db` and records it as held; returns its epoch.
fn take_lease(db: &PostgresStorage, held: &HeldLeases, module: &str) -> i64 {
    let epoch = leases::acquire(db, module, LEASE)
        .unwrap()
        .expect("a free lease");
    held.insert(module, epoch);
    epoch
}

fn write(ledger: &Ledger, module: &ModuleName, value: &str) -> Result<(), StoreError> {
    ledger.commit_call(
        module,
        [("k".to_string(), Some(value.as_bytes().to_vec()))],
        None,
        &Bookkeeping::default(),
        0,
    )
}

#[test]
fn a_node_whose_module_was_taken_over_can_no_longer_commit_for_it() {
    let url = nexum_tests::postgres::fresh_database();
    let (a, held_a) = node(&url, "node-a");
    let (b, held_b) = node(&url, "node-b");
    let (ledger_a, ledger_b) = (Ledger::shared(a.clone()), Ledger::shared(b.clone()));
    let module = ModuleName::new("keeper").unwrap();

    // Without a lease, nobody commits.
    assert!(matches!(
        write(&ledger_a, &module, "x"),
        Err(StoreError::Fenced { .. })
    ));

    let epoch = take_lease(&a, &held_a, "keeper");
    write(&ledger_a, &module, "from a").unwrap();
    assert_eq!(
        leases::acquire(&b, "keeper", LEASE).unwrap(),
        None,
        "a holds it"
    );

    // Node a stops renewing (paused, cut off): its lease runs out and b takes over.
    b.with_client(|c| {
        c.execute(
            "UPDATE nexum_leases SET expires_at = now() - interval '1 second'",
            &[],
        )
    })
    .unwrap();
    let taken = leases::acquire(&b, "keeper", LEASE)
        .unwrap()
        .expect("an expired lease");
    assert_eq!(taken, epoch + 1);
    held_b.insert("keeper", taken);

    // Node a comes back still believing it runs the module: fenced, and told so on renewal.
    assert!(matches!(
        write(&ledger_a, &module, "stale"),
        Err(StoreError::Fenced { module }) if module == "keeper"
    ));
    assert!(!leases::renew(&a, "keeper", epoch, LEASE, LEASE).unwrap());
    write(&ledger_b, &module, "from b").unwrap();
    assert_eq!(
        ledger_a.read(&module, "k").unwrap(),
        Some(b"from b".to_vec())
    );

    // A clean hand-back frees the lease at once, and a renewal that comes after it (asked
    // for before it) does not extend it.
    held_b.remove("keeper");
    leases::release(&b, "keeper", taken, LEASE).unwrap();
    assert!(leases::renew(&b, "keeper", taken, LEASE, LEASE).unwrap());
    assert_eq!(
        leases::acquire(&a, "keeper", LEASE).unwrap(),
        Some(taken + 1)
    );
    let rows = leases::leases(&a).unwrap();
    assert_eq!(
        (rows[0].owner.as_str(), rows[0].epoch),
        ("node-a", taken + 1)
    );
}

#[test]
fn the_shared_store_answers_like_the_embedded_one() {
    let url = nexum_tests::postgres::fresh_database();
    let (shared, _) = node(&url, "solo");
    let memory = MemoryStorage::default();
    let space = Space::Module(ModuleName::new("m").unwrap());
    let mut batch = Batch::default();
    for key in [
        "a",
        "a/1",
        "a/2",
        "a/10",
        "ab",
        "b",
        "é/x",
        "é/y",
        "z\u{10ffff}",
    ] {
        batch.set(space.clone(), key, key.repeat(3).into_bytes());
    }
    batch.set(Space::Engine, "a/1", b"engine".to_vec());
    let mut removal = Batch::default();
    removal.remove(space.clone(), "a/2");
    // One batch may write a key more than once: the last write is the one that counts.
    for (i, key) in ["twice", "set-then-removed", "removed-then-set"]
        .iter()
        .enumerate()
    {
        removal.set(space.clone(), *key, format!("first {i}").into_bytes());
        removal.set(Space::Engine, *key, b"the engine's own".to_vec());
    }
    removal.set(space.clone(), "twice", b"second".to_vec());
    removal.remove(space.clone(), "set-then-removed");
    removal.remove(space.clone(), "removed-then-set");
    removal.set(space.clone(), "removed-then-set", b"again".to_vec());
    for storage in [&*shared as &dyn Storage, &memory] {
        storage.commit(batch.clone()).unwrap();
        storage.commit(removal.clone()).unwrap();
    }
    for prefix in ["", "a", "a/", "é", "z", "zz"] {
        assert_eq!(
            shared.scan(&space, prefix, 100).unwrap(),
            memory.scan(&space, prefix, 100).unwrap(),
            "scan {prefix:?}"
        );
        assert_eq!(
            shared.count(&space, prefix).unwrap(),
            memory.count(&space, prefix).unwrap()
        );
        assert_eq!(
            shared.keys(&space, prefix, 2).unwrap(),
            memory.keys(&space, prefix, 2).unwrap()
        );
        for after in [None, Some("a/1"), Some("0"), Some("é/x")] {
            assert_eq!(
                shared.scan_after(&space, prefix, after, 3, 9).unwrap(),
                memory.scan_after(&space, prefix, after, 3, 9).unwrap(),
                "scan_after {prefix:?} {after:?}"
            );
        }
    }
    assert_eq!(
        shared.get(&Space::Engine, "a/1").unwrap(),
        Some(b"engine".to_vec())
    );
    assert_eq!(shared.value_len(&space, "ab").unwrap(), Some(6));
    assert_eq!(shared.get(&space, "a/2").unwrap(), None);
    for key in ["twice", "set-then-removed", "removed-then-set"] {
        assert_eq!(
            shared.get(&space, key).unwrap(),
            memory.get(&space, key).unwrap(),
            "{key}"
        );
        assert_eq!(
            shared.get(&Space::Engine, key).unwrap(),
            Some(b"the engine's own".to_vec())
        );
    }
    assert_eq!(
        shared.get(&space, "twice").unwrap(),
        Some(b"second".to_vec())
    );
    assert_eq!(shared.get(&space, "set-then-removed").unwrap(), None);
}

/// A module's call as the engine commits it: its writes, its store usage and the engine's
/// records of it.
fn call_writes(
    ledger: &Ledger,
    module: &ModuleName,
    writes: &[(&str, Option<&[u8]>)],
    used: u64,
) -> Result<(), StoreError> {
    let counter = std::sync::atomic::AtomicU64::new(0);
    ledger.commit_call(
        module,
        writes
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec))),
        Some((&counter, used)),
        &Bookkeeping::default(),
        0,
    )
}

#[test]
fn a_commit_that_waited_for_a_takeover_in_flight_is_fenced_and_writes_nothing() {
    let url = nexum_tests::postgres::fresh_database();
    let (a, held_a) = node(&url, "node-a");
    let ledger_a = Arc::new(Ledger::shared(a.clone()));
    let module = ModuleName::new("keeper").unwrap();
    let space = Space::Module(module.clone());
    take_lease(&a, &held_a, "keeper");
    call_writes(
        &ledger_a,
        &module,
        &[("k", Some(b"from a")), ("kept", Some(b"x"))],
        10,
    )
    .unwrap();
    let before = (
        a.scan(&space, "", 100).unwrap(),
        a.scan(&Space::Engine, "", 100).unwrap(),
    );

    // Another node's takeover, under way: the lease row is changed but not yet committed.
    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let takeover_session: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut takeover = other.transaction().unwrap();
    takeover
        .execute(
            "UPDATE nexum_leases SET owner = 'node-b', epoch = epoch + 1 WHERE module = 'keeper'",
            &[],
        )
        .unwrap();

    // Node a commits meanwhile (a set, a removal, its usage): its statement must wait for
    // the takeover's row lock.
    let committing = std::thread::spawn({
        let (ledger_a, module) = (ledger_a.clone(), module.clone());
        move || {
            call_writes(
                &ledger_a,
                &module,
                &[("k", Some(b"stale")), ("kept", None)],
                20,
            )
        }
    });
    let mut watcher = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let blocked: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&takeover_session],
            )
            .unwrap()
            .get(0);
        if blocked > 0 {
            break;
        }
        if committing.is_finished() {
            panic!(
                "node a's commit did not wait for the takeover's row lock: {:?}",
                committing.join().unwrap()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node a's commit is not waiting on the takeover after 20 s"
        );
        std::thread::sleep(Duration::from_millis(5)); // polling the server, not waiting on it
    }
    takeover.commit().unwrap();

    assert!(matches!(
        committing.join().unwrap(),
        Err(StoreError::Fenced { module }) if module == "keeper"
    ));
    let after = (
        a.scan(&space, "", 100).unwrap(),
        a.scan(&Space::Engine, "", 100).unwrap(),
    );
    assert_eq!(
        after, before,
        "the fenced commit changed the module's store or the engine's records"
    );
}

#[test]
fn a_batch_too_large_for_one_statement_commits_whole_and_is_fenced_whole() {
    let url = nexum_tests::postgres::fresh_database();
    let (a, held_a) = node(&url, "node-a");
    let ledger_a = Ledger::shared(a.clone());
    let module = ModuleName::new("keeper").unwrap();
    let space = Space::Module(module.clone());
    take_lease(&a, &held_a, "keeper");

    // 24 values of 1 MiB: more than one statement carries.
    let big = vec![7u8; 1024 * 1024];
    let keys: Vec<String> = (0..24).map(|i| format!("big/{i:02}")).collect();
    let mut writes: Vec<(&str, Option<&[u8]>)> =
        keys.iter().map(|k| (k.as_str(), Some(&big[..]))).collect();
    writes.push(("small", Some(b"1")));
    call_writes(&ledger_a, &module, &writes, 1).unwrap();
    assert_eq!(a.count(&space, "big/").unwrap(), 24);
    assert_eq!(a.value_len(&space, "big/23").unwrap(), Some(big.len()));
    let before = (
        a.scan(&space, "small", 10).unwrap(),
        a.scan(&Space::Engine, "", 100).unwrap(),
    );

    // A large batch whose last part fails leaves its first part unwritten too: the server
    // refuses one key of it (a trigger of this test's own).
    a.with_client(|c| {
        c.batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
             BEGIN
                 IF NEW.key = convert_to('zz-poison', 'UTF8') THEN
                     RAISE EXCEPTION 'this test refuses the key';
                 END IF;
                 RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_poison BEFORE INSERT ON nexum_entries
                 FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
    })
    .unwrap();
    let fresh = vec![8u8; 1024 * 1024];
    let mut poisoned: Vec<(&str, Option<&[u8]>)> = keys
        .iter()
        .map(|k| (k.as_str(), Some(&fresh[..])))
        .collect();
    poisoned.push(("zz-poison", Some(b"1")));
    let refused = call_writes(&ledger_a, &module, &poisoned, 3);
    assert!(
        matches!(&refused, Err(StoreError::Backend(why)) if why.contains("this test refuses the key")),
        "{refused:?}"
    );
    for key in [&keys[0], &keys[23]] {
        let stored = a.get(&space, key).unwrap();
        assert!(stored.as_ref() == Some(&big), "{key} changed");
    }

    // Taken over: a large batch of the old owner writes none of its parts.
    a.with_client(|c| {
        c.execute(
            "UPDATE nexum_leases SET owner = 'node-b', epoch = epoch + 1",
            &[],
        )
    })
    .unwrap();
    let other = vec![9u8; 1024 * 1024];
    let mut stale: Vec<(&str, Option<&[u8]>)> = keys
        .iter()
        .map(|k| (k.as_str(), Some(&other[..])))
        .collect();
    stale.push(("small", None));
    assert!(matches!(
        call_writes(&ledger_a, &module, &stale, 2),
        Err(StoreError::Fenced { .. })
    ));
    for key in [&keys[0], &keys[23]] {
        let stored = a.get(&space, key).unwrap();
        assert!(stored.as_ref() == Some(&big), "{key} changed");
    }
    assert_eq!(
        (
            a.scan(&space, "small", 10).unwrap(),
            a.scan(&Space::Engine, "", 100).unwrap(),
        ),
        before
    );
}
