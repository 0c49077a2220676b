//! roomcast's backtest engine: the pure domain code behind seeds 002 and
//! 003's backtests. Bars and timeframes ([`bar`]), trading calendars
//! ([`calendar`], the NYSE's in [`nyse`]), deterministic generated series
//! and CSV files ([`data`]), strategies ([`strategy`]), the run itself with
//! its fills, stops, targets and costs ([`run`]), and the metrics ([`metrics`]);
//! and the live paper-trading account behind seed 004 ([`paper`]).
//!
//! It has no async runtime and no roomcast types, so it cannot reach up into
//! the gateway. A run is a value the caller steps one bar at a time
//! ([`run::Run::step`]): that is how roomcast paces runs, cancels and pauses
//! them, and turns what each bar did into seed 002 and seed 003 events.
//! Everything is deterministic: the same request on the same data gives the
//! same trades, to the bit.

#![deny(unsafe_code)]

pub mod bar;
pub mod calendar;
pub mod chart;
pub mod data;
pub mod metrics;
pub mod nyse;
pub mod paper;
pub mod rng;
pub mod run;
pub mod strategy;

pub use bar::{Bar, Timeframe};
pub use calendar::Calendar;
