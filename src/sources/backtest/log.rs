//! A run's own log: the lines its driver writes with [`run_log!`] are
//! `tracing` events (the node's log shows them, with the run's id) and, the
//! same call, the run's seed 002 `log_entry` events, captured per run so the
//! lines of concurrent runs never mix. Each line names the code that wrote
//! it as Python's `logging` would: the file stem (`record.module`), the
//! function, the line; levels carry Python's names (`WARNING`, not `WARN`).

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Its level.
    pub level: tracing::Level,
    /// The text.
    pub message: String,
    /// The writing file's stem (`driver`), like Python's `record.module`.
    pub module: &'static str,
    /// The writing function (`run`).
    pub function: &'static str,
    /// The writing line.
    pub line: u32,
}

/// Python's name of a level: `DEBUG`, `INFO`, `WARNING`, `ERROR` (trace
/// lines are `DEBUG`; Python has no lower level).
pub fn python_level(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARNING",
        tracing::Level::INFO => "INFO",
        tracing::Level::DEBUG | tracing::Level::TRACE => "DEBUG",
    }
}

/// The stem of a source path (`src/sources/backtest/driver.rs` → `driver`).
pub const fn file_stem(path: &'static str) -> &'static str {
    let bytes = path.as_bytes();
    let mut start = 0;
    let mut end = bytes.len();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' || bytes[i] == b'\\' {
            start = i + 1;
            end = bytes.len();
        } else if bytes[i] == b'.' {
            end = i;
        }
        i += 1;
    }
    let (_, rest) = bytes.split_at(start);
    let (stem, _) = rest.split_at(end - start);
    match std::str::from_utf8(stem) {
        Ok(stem) => stem,
        Err(_) => path,
    }
}

/// The name of the function a path of [`std::any::type_name`] ends in:
/// `a::b::Driver::run::{{closure}}::f` → `run` (`f` being the marker the
/// macro defines, closures and async blocks skipped).
pub fn function_of(type_name: &'static str) -> &'static str {
    type_name
        .rsplit("::")
        .skip(1)
        .find(|part| !part.starts_with('{'))
        .unwrap_or(type_name)
}

/// Writes a line to a run's log (anything with `log_line(LogLine)` and
/// `id() -> &str`) and to the node's log: `run_log!(run, INFO, "Loaded {n} bars")`.
macro_rules! run_log {
    ($run:expr, $level:ident, $($arg:tt)+) => {{
        fn f() {}
        fn name_of<T>(_: T) -> &'static str {
            std::any::type_name::<T>()
        }
        let message = format!($($arg)+);
        tracing::event!(
            target: "roomcast::backtest",
            tracing::Level::$level,
            backtest_id = %$run.id(),
            "{message}"
        );
        $run.log_line($crate::sources::backtest::log::LogLine {
            level: tracing::Level::$level,
            message,
            module: const { $crate::sources::backtest::log::file_stem(file!()) },
            function: $crate::sources::backtest::log::function_of(name_of(f)),
            line: line!(),
        });
    }};
}
pub(crate) use run_log;

#[cfg(test)]
mod tests {
    use super::*;

    struct Sink(Vec<LogLine>);

    impl Sink {
        fn id(&self) -> &str {
            "bt-1"
        }
        fn log_line(&mut self, line: LogLine) {
            self.0.push(line);
        }
    }

    fn executes_a_trade(sink: &mut Sink) -> u32 {
        run_log!(sink, WARN, "Trade executed: BUY {} lots", 0.1);
        line!() - 1
    }

    #[test]
    fn a_line_names_its_file_stem_function_and_line_with_python_levels() {
        let mut sink = Sink(Vec::new());
        let line = executes_a_trade(&mut sink);
        let logged = &sink.0[0];
        assert_eq!(logged.message, "Trade executed: BUY 0.1 lots");
        assert_eq!(logged.module, "log");
        assert_eq!(logged.function, "executes_a_trade");
        assert_eq!(logged.line, line);
        assert_eq!(python_level(logged.level), "WARNING");
    }

    #[test]
    fn closures_and_async_blocks_are_skipped_in_function_names() {
        assert_eq!(function_of("a::b::Driver::run::{{closure}}::f"), "run");
        assert_eq!(function_of("a::load::f"), "load");
        assert_eq!(file_stem("src/sources/backtest/driver.rs"), "driver");
        assert_eq!(file_stem("driver.rs"), "driver");
    }
}
