//! Log lines, tagged by the host with the module's name. Prefer the macros
//! ([`info!`](crate::info), [`warn!`](crate::warn), …), which format like `println!`.

pub use crate::bindings::nexum::host::logging::Level;

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    crate::host::log(level, message)
}

/// Logs at trace level, formatting like `format!`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)*)) };
}

/// Logs at debug level, formatting like `format!`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}

/// Logs at info level, formatting like `format!`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)*)) };
}

/// Logs at warn level, formatting like `format!`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}

/// Logs at error level, formatting like `format!`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)*)) };
}
