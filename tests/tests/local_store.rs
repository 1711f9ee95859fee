//! `local-store` end to end: compiled guests, a real fjall store.

use nexum_core::Outcome;
use nexum_tests::engine::{TestModule, boot, boot_in, test_config};

#[tokio::test]
async fn writes_commit_when_the_call_returns_ok() {
    let engine = boot(vec![TestModule::probe("a")], test_config())
        .await
        .unwrap();
    let outcome = engine.run("a", "set x 1; set y 2").await;
    assert_eq!(outcome, Outcome::Handled);
    assert_eq!(engine.read("a", "x").as_deref(), Some("1"));
    assert_eq!(engine.read("a", "y").as_deref(), Some("2"));
}

#[tokio::test]
async fn writes_are_discarded_when_the_call_returns_err() {
    let engine = boot(vec![TestModule::probe("a")], test_config())
        .await
        .unwrap();
    engine.run("a", "set x 1").await;
    let outcome = engine.run("a", "set x 2; set y 2; fail").await;
    assert!(
        matches!(outcome, Outcome::Failed(ref r) if r.contains("asked to fail")),
        "{outcome:?}"
    );
    assert_eq!(engine.read("a", "x").as_deref(), Some("1"));
    assert_eq!(engine.read("a", "y"), None);
}

#[tokio::test]
async fn writes_are_discarded_when_the_call_traps() {
    let mut config = test_config();
    config.supervision.quarantine_after = 1;
    let engine = boot(vec![TestModule::probe("a")], config).await.unwrap();
    engine.run("a", "set x 1").await;
    let outcome = engine.run("a", "set x 2; set y 2; panic").await;
    assert!(
        matches!(outcome, Outcome::Trapped(ref r) if r.contains("unreachable")),
        "{outcome:?}"
    );
    assert_eq!(engine.read("a", "x").as_deref(), Some("1"));
    assert_eq!(engine.read("a", "y"), None);
}

#[tokio::test]
async fn after_a_trap_the_module_restarts_on_a_fresh_store_and_the_event_is_retried() {
    // `init` counts boots; the event traps in the first instance and succeeds in the second.
    let module = TestModule::new(
        "probe",
        "a",
        &["local-store", "logging"],
        "[config]\ninit = \"count boots\"\n",
    );
    let engine = boot(vec![module], test_config()).await.unwrap();
    let outcome = engine
        .run("a", "set attempt x; panic-unless boots 2; set done yes")
        .await;
    assert_eq!(outcome, Outcome::Handled);
    assert_eq!(engine.read("a", "boots").as_deref(), Some("2"));
    assert_eq!(engine.read("a", "done").as_deref(), Some("yes"));
    let outcome = engine.run("a", "set after yes").await;
    assert_eq!(outcome, Outcome::Handled);
}

#[tokio::test]
async fn a_call_reads_its_own_writes() {
    let engine = boot(vec![TestModule::probe("a")], test_config())
        .await
        .unwrap();
    engine.run("a", "set old gone").await;
    engine
        .run(
            "a",
            "set fresh yes; copy fresh seen; del old; copy old seen-old; list \"\" keys",
        )
        .await;
    assert_eq!(engine.read("a", "seen").as_deref(), Some("yes"));
    assert_eq!(engine.read("a", "seen-old").as_deref(), Some(""));
    assert_eq!(engine.read("a", "old"), None);
}

#[tokio::test]
async fn modules_cannot_see_each_others_keys() {
    let engine = boot(
        vec![TestModule::probe("a"), TestModule::probe("b")],
        test_config(),
    )
    .await
    .unwrap();
    engine.run("a", "set shared from-a; set only-a 1").await;
    engine.run("b", "set shared from-b").await;
    // Each lists everything it can see ("" prefix) and copies the shared key.
    engine.run("a", "list  listing; copy shared mine").await;
    engine.run("b", "list  listing; copy shared mine").await;
    assert_eq!(engine.read("a", "mine").as_deref(), Some("from-a"));
    assert_eq!(engine.read("b", "mine").as_deref(), Some("from-b"));
    assert_eq!(
        engine.read("a", "listing").as_deref(),
        Some(r#"["only-a","shared"]"#)
    );
    assert_eq!(
        engine.read("b", "listing").as_deref(),
        Some(r#"["shared"]"#)
    );
}

#[tokio::test]
async fn list_keys_is_sorted_and_filtered_by_prefix() {
    let engine = boot(vec![TestModule::probe("a")], test_config())
        .await
        .unwrap();
    engine.run("a", "set p/3 x; set q/1 x; set p/1 x").await;
    engine.run("a", "set p/2 x; list p/ out").await;
    assert_eq!(
        engine.read("a", "out").as_deref(),
        Some(r#"["p/1","p/2","p/3"]"#)
    );
}

#[tokio::test]
async fn oversized_keys_and_values_are_refused_and_nothing_is_written() {
    let mut config = test_config();
    config.limits.store_key_bytes = 8;
    config.limits.store_value_bytes = 4;
    let engine = boot(vec![TestModule::probe("a")], config).await.unwrap();
    let outcome = engine.run("a", "set ok 1; set k 12345").await;
    assert!(
        matches!(outcome, Outcome::Failed(ref r) if r.contains("value is 5 bytes; the limit is 4")),
        "{outcome:?}"
    );
    let outcome = engine.run("a", "set much-too-long-key 1").await;
    assert!(
        matches!(outcome, Outcome::Failed(ref r) if r.contains("key is 17 bytes; the limit is 8")),
        "{outcome:?}"
    );
    assert_eq!(engine.read("a", "ok"), None);
}

#[tokio::test]
async fn state_survives_a_restart_and_init_writes_commit() {
    let module = || {
        TestModule::new(
            "probe",
            "a",
            &["local-store", "logging"],
            "[config]\ninit = \"count boots\"\n",
        )
    };
    let engine = boot(vec![module()], test_config()).await.unwrap();
    engine.run("a", "set kept yes").await;
    let dir = engine.dir;
    engine.runtime.shutdown().await;

    let engine = boot_in(dir, vec![module()], test_config()).await.unwrap();
    assert_eq!(engine.read("a", "kept").as_deref(), Some("yes"));
    assert_eq!(engine.read("a", "boots").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_module_walks_counts_and_batches_thousands_of_keys() {
    let engine = boot(vec![TestModule::probe("a")], test_config())
        .await
        .unwrap();
    assert_eq!(engine.run("a", "fill k/ 2500").await, Outcome::Handled);
    // Inside one call: delete one, add one, then walk across pages.
    let outcome = engine
        .run(
            "a",
            "del k/0000007; set k/0000007x v; walk k/ walked; tally k/ tallied; has k/0000007x has",
        )
        .await;
    assert_eq!(outcome, Outcome::Handled);
    assert_eq!(engine.read("a", "walked").as_deref(), Some("2500"));
    assert_eq!(engine.read("a", "tallied").as_deref(), Some("2500"));
    assert_eq!(engine.read("a", "has").as_deref(), Some("[true,1]"));
    // The walk sees the call's own writes: the exact keys, in order.
    engine
        .run(
            "a",
            "del k/0001000; set k/0001000x v; walk-keys k/0001 some",
        )
        .await;
    let some: Vec<String> = serde_json::from_str(&engine.read("a", "some").unwrap()).unwrap();
    let mut expected: Vec<String> = (1000..2000).map(|i| format!("k/{i:07}")).collect();
    expected[0] = "k/0001000x".into();
    expected.sort();
    assert_eq!(some, expected);
}

#[tokio::test]
async fn a_batch_over_the_quota_is_refused_whole() {
    let mut config = test_config();
    config.limits.store_total_bytes = 4096;
    let engine = boot(vec![TestModule::probe("a")], config).await.unwrap();
    // 1000 keys of 11 bytes plus 1 byte of value: far over 4 KiB. The call goes on after
    // the refusal and commits; nothing of the batch is in what it committed.
    let outcome = engine
        .run("a", "set kept 1; try-fill big/ 1000; tally big/ n")
        .await;
    assert_eq!(outcome, Outcome::Handled);
    assert!(
        engine
            .read("a", "refused")
            .is_some_and(|r| r.contains("quota")),
        "{:?}",
        engine.read("a", "refused")
    );
    assert_eq!(engine.read("a", "n").as_deref(), Some("0"));
    assert_eq!(engine.read("a", "kept").as_deref(), Some("1"));
    assert_eq!(engine.run("a", "fill small/ 100").await, Outcome::Handled);
    engine.run("a", "tally small/ n").await;
    assert_eq!(engine.read("a", "n").as_deref(), Some("100"));
}
