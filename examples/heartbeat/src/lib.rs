//! Example nexum module: on every cron tick, counts the beat in its store and logs it.
//!
//! The counter lives in `local-store`, so it carries on across restarts of the engine.

use nexum_guest::{Config, Fault, Module, Tick, export_module, info, store};

/// Store key of the beat counter.
const BEATS: &str = "beats";

/// The heartbeat module. `label` (from `[config]`) is printed with each beat.
pub struct Heartbeat {
    label: String,
}

impl Module for Heartbeat {
    fn init(config: Config) -> Result<Self, Fault> {
        let label = config
            .get_opt::<String>("label")?
            .unwrap_or_else(|| "heartbeat".into());
        Ok(Heartbeat { label })
    }

    fn on_tick(&mut self, tick: Tick) -> Result<(), Fault> {
        let beats = store::get_json::<u64>(BEATS)?.unwrap_or(0) + 1;
        store::set_json(BEATS, &beats)?;
        info!(
            "{} beat #{beats} (tick at {} ms)",
            self.label, tick.fired_at
        );
        Ok(())
    }
}

export_module!(Heartbeat);

#[cfg(test)]
mod tests {
    use super::*;
    use nexum_guest::testing::TestHost;

    #[test]
    fn counts_beats_across_instances() {
        let host = TestHost::new();
        let mut first: Heartbeat = host.init(&[("label", "demo")]).unwrap();
        host.deliver(&mut first, TestHost::tick(1_000)).unwrap();
        host.deliver(&mut first, TestHost::tick(2_000)).unwrap();
        // A restarted instance continues from the stored count.
        let mut second: Heartbeat = host.init(&[]).unwrap();
        host.deliver(&mut second, TestHost::tick(3_000)).unwrap();
        assert_eq!(host.store_json::<u64>(BEATS), Some(3));
        let logs = host.logs();
        assert_eq!(logs[0].1, "demo beat #1 (tick at 1000 ms)");
        assert_eq!(logs[2].1, "heartbeat beat #3 (tick at 3000 ms)");
    }
}
