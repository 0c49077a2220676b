//! The market family: seed 001's events (`price_update`, `pattern_alert`,
//! `alert_trigger`, `market_status`), typed, because roomcast reads them —
//! a price fires alerts and feeds the stats, the simulator and ingest build
//! them. Their canonical JSON is seed 001's message, serde-tagged by `type`;
//! the tag is read only for rooms of the market family (the catalog decides
//! which family a room's events are), so other families may reuse a tag
//! (seed 004 has its own `price_update`).

use serde::{Deserialize, Serialize, Serializer};

/// A seed 001 `price_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceUpdate {
    pub ticker: String,
    pub price: f64,
    pub change: f64,
    pub change_percent: f64,
    #[serde(serialize_with = "number")]
    pub volume: f64,
    pub high: f64,
    pub low: f64,
    pub open: f64,
    pub timestamp: String,
}

/// A seed 001 `pattern_alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternAlert {
    pub ticker: String,
    pub pattern_type: String,
    pub score: f64,
    pub entry_price: f64,
    pub stop_price: f64,
    pub target_price: f64,
    pub risk_reward_ratio: f64,
    pub message: String,
    pub timestamp: String,
}

/// A seed 001 `alert_trigger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTrigger {
    pub ticker: String,
    pub alert_type: String,
    pub trigger_price: f64,
    pub current_price: f64,
    pub message: String,
    pub timestamp: String,
}

/// A seed 001 `market_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketStatus {
    /// `open` or `closed`.
    pub status: String,
    pub next_open: Option<String>,
    pub next_close: Option<String>,
    pub timestamp: String,
}

/// An event of the market family, as seed 001 spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MarketEvent {
    PriceUpdate(PriceUpdate),
    PatternAlert(PatternAlert),
    AlertTrigger(AlertTrigger),
    MarketStatus(MarketStatus),
}

/// Writes a float that holds a whole number as a JSON integer (volumes read
/// `75000000`, as in the seeds, not `75000000.0`).
pub fn number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}
