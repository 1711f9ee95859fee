//! Module log lines and stdout/stderr reach `tracing`, tagged with the module's name.

use nexum_core::Outcome;
use nexum_tests::engine::{TestModule, boot, test_config};
use nexum_tests::logs::capture;
use tracing::Level;

#[tokio::test(flavor = "current_thread")]
async fn log_calls_and_stdout_become_tagged_log_lines() {
    let (captured, _guard) = capture();
    let engine = boot(
        vec![TestModule::probe("talker"), TestModule::probe("quiet")],
        test_config(),
    )
    .await
    .unwrap();
    let outcome = engine
        .run(
            "talker",
            "log hello from the log call; print hello from stdout",
        )
        .await;
    assert_eq!(outcome, Outcome::Handled);

    let lines = captured.of_module("talker");
    let messages: Vec<(&Level, &str, &str)> = lines
        .iter()
        .map(|l| (&l.level, l.target.as_str(), l.message.as_str()))
        .collect();
    assert!(
        messages.contains(&(&Level::INFO, "nexum::module", "hello from the log call")),
        "{messages:?}"
    );
    assert!(
        messages.contains(&(&Level::INFO, "nexum::module", "hello from stdout")),
        "{messages:?}"
    );
    assert!(
        captured
            .of_module("quiet")
            .iter()
            .all(|l| l.target != "nexum::module")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_message_is_logged_and_the_trap_reported_as_an_error() {
    let (captured, _guard) = capture();
    let mut config = test_config();
    config.supervision.quarantine_after = 1;
    let engine = boot(vec![TestModule::probe("crashy")], config)
        .await
        .unwrap();
    engine.run("crashy", "panic").await;
    let lines = captured.of_module("crashy");
    assert!(
        lines
            .iter()
            .any(|l| l.level == Level::WARN && l.message.contains("asked to panic")),
        "stderr should carry the panic message: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.level == Level::ERROR && l.message.contains("module trapped")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.level == Level::ERROR && l.message.contains("quarantined"))
    );
}
