//! Components written by hand in the component model's text format, for tests that need a
//! module no toolchain of ours would build: an older contract, hostile shapes.

/// What a component's text starts with after `(component`: the import of
/// `nexum:host/types@0.2.0`, with its `event` and `fault` types aliased as `$event` and
/// `$fault`.
pub const IMPORT_TYPES_0_2_0: &str = r#"  (import "nexum:host/types@0.2.0" (instance $types
    (type $block (record (field "chain-id" u64) (field "number" u64) (field "hash" (list u8))
      (field "parent-hash" (list u8)) (field "timestamp" u64)))
    (export "block" (type $block-t (eq $block)))
    (type $chain-log (record (field "address" (list u8)) (field "topics" (list (list u8)))
      (field "data" (list u8)) (field "block-number" (option u64)) (field "block-hash" (option (list u8)))
      (field "transaction-hash" (option (list u8))) (field "transaction-index" (option u64))
      (field "log-index" (option u64)) (field "removed" bool)))
    (export "chain-log" (type $chain-log-t (eq $chain-log)))
    (type $chain-logs (record (field "chain-id" u64) (field "logs" (list $chain-log-t))))
    (export "chain-logs" (type $chain-logs-t (eq $chain-logs)))
    (type $tick (record (field "fired-at" u64) (field "schedule" string)))
    (export "tick" (type $tick-t (eq $tick)))
    (type $event (variant (case "block" $block-t) (case "chain-logs" $chain-logs-t) (case "tick" $tick-t)))
    (export "event" (type (eq $event)))
    (type $rate-limit (record (field "retry-after-ms" (option u64))))
    (export "rate-limit" (type $rate-limit-t (eq $rate-limit)))
    (type $fault (variant (case "unsupported" string) (case "unavailable" string) (case "denied" string)
      (case "rate-limited" $rate-limit-t) (case "timeout") (case "invalid-input" string) (case "internal" string)))
    (export "fault" (type (eq $fault)))
  ))
  (alias export $types "event" (type $event))
  (alias export $types "fault" (type $fault))
"#;

/// What a component's text ends with: a core module whose `init` and `on-event` answer `ok`,
/// lifted as the exports of a nexum module, and the closing parenthesis.
pub const OK_EXPORTS: &str = r#"  (core module $main
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "init") (param i32 i32) (result i32) i32.const 16)
    (func (export "on-event") (param i32 i64 i64 i32 i32 i32 i32 i64) (result i32) i32.const 16))
  (core instance $main (instantiate $main))
  (func (export "init") (param "config" (list (tuple string string))) (result (result (error $fault)))
    (canon lift (core func $main "init") (memory (core memory $main "memory")) (realloc (core func $main "realloc"))))
  (func (export "on-event") (param "event" $event) (result (result (error $fault)))
    (canon lift (core func $main "on-event") (memory (core memory $main "memory")) (realloc (core func $main "realloc"))))
)"#;

/// The text of a nexum module importing the 0.2.0 types, then `body`, with [`OK_EXPORTS`].
pub fn module_text(body: &str) -> String {
    format!("(component\n{IMPORT_TYPES_0_2_0}{body}{OK_EXPORTS}")
}
