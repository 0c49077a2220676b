//! User price alerts (`POST /api/alerts`): a ticker, a condition (`above`,
//! `below`, `breakout`) and a trigger price, evaluated on every price update
//! of that ticker whatever its source. An alert fires once — it becomes an
//! `alert_trigger` event in the `alerts` room — and is then removed.
//!
//! * `above`: fires on the first price at or above the trigger.
//! * `below`: fires on the first price at or below the trigger.
//! * `breakout`: fires when the price crosses the trigger upwards (the
//!   previous price was below it, this one is at or above it); an alert
//!   created while the price is already above waits for a dip and a new cross.
//!
//! Alerts are bounded twice: `ROOMCAST_MAX_ALERTS` in all and
//! `ROOMCAST_MAX_ALERTS_PER_USER` per `user_id` (alerts without one share a
//! single allowance), so one client cannot take the whole book; either
//! refusal is the same 429. Listing pages through the book by id.
//!
//! An embedded node keeps its alerts in process ([`AlertBook`]); a fleet node
//! in Redis ([`RedisAlerts`]), so an alert armed anywhere is listed, deleted
//! and fired (once) through any node. [`Alerts`] is the one the node has.

pub mod book;
pub mod fleet;

use serde::{Deserialize, Serialize};

pub use book::AlertBook;
pub use fleet::RedisAlerts;

use crate::bus::BusError;
use crate::protocol::{AlertTrigger, time};

/// The condition of a price alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Above,
    Below,
    Breakout,
}

impl AlertKind {
    fn as_str(self) -> &'static str {
        match self {
            AlertKind::Above => "above",
            AlertKind::Below => "below",
            AlertKind::Breakout => "breakout",
        }
    }
}

/// One armed alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceAlert {
    /// Assigned by the book; used to delete the alert.
    pub id: u64,
    /// Normalised ticker.
    pub ticker: String,
    /// Condition.
    pub alert_type: AlertKind,
    /// Price the condition compares against.
    pub trigger_price: f64,
    /// Who asked, if given (echoed back, not used for routing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// When the alert was armed.
    pub created_at: String,
}

/// Why an alert was not armed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// The book holds `ROOMCAST_MAX_ALERTS`.
    #[error("alert limit reached ({0} alerts)")]
    TooMany(usize),
    /// This user holds `ROOMCAST_MAX_ALERTS_PER_USER`.
    #[error("alert limit reached for this user ({0} alerts per user)")]
    TooManyForUser(usize),
}

/// One page of the armed alerts, by id.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage {
    /// Armed alerts in all.
    pub total: usize,
    /// The alerts from the page's offset, at most its limit.
    pub alerts: Vec<PriceAlert>,
}

impl AlertPage {
    /// The page of `all` (sorted by id) from `offset`, at most `limit` long.
    pub fn of(mut all: Vec<PriceAlert>, offset: usize, limit: usize) -> Self {
        let total = all.len();
        all.drain(..offset.min(total));
        all.truncate(limit);
        AlertPage { total, alerts: all }
    }
}

impl PriceAlert {
    /// A new alert, armed now.
    pub fn new(
        id: u64,
        ticker: String,
        alert_type: AlertKind,
        trigger_price: f64,
        user_id: Option<String>,
    ) -> Self {
        PriceAlert {
            id,
            ticker,
            alert_type,
            trigger_price,
            user_id,
            created_at: time::now(),
        }
    }
}

/// An alert a price fired, and the trigger it publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The alert, disarmed (see [`AlertBook::restore`]).
    pub alert: PriceAlert,
    /// Its `alert_trigger` event.
    pub trigger: AlertTrigger,
}

pub(crate) fn trigger(alert: &PriceAlert, price: f64) -> AlertTrigger {
    let t = &alert.ticker;
    let target = alert.trigger_price;
    let message = match alert.alert_type {
        AlertKind::Breakout => format!("{t} breaking out at ${price:.2} (target: ${target:.2})"),
        AlertKind::Above => format!("{t} at ${price:.2}, above ${target:.2}"),
        AlertKind::Below => format!("{t} at ${price:.2}, below ${target:.2}"),
    };
    AlertTrigger {
        ticker: t.clone(),
        alert_type: alert.alert_type.as_str().to_string(),
        trigger_price: target,
        current_price: price,
        message,
        timestamp: time::now(),
    }
}

/// Why arming an alert failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertsError {
    /// The book is full (429).
    #[error(transparent)]
    Alerts(#[from] AlertError),
    /// Redis failed (503).
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// The node's alert book: in process, or the fleet's in Redis.
#[derive(Debug)]
pub enum Alerts {
    /// Embedded mode.
    Local(AlertBook),
    /// Fleet mode (`REDIS_URL`).
    Fleet(RedisAlerts),
}

impl Alerts {
    /// Arms an alert (the ticker already normalised).
    pub async fn add(
        &self,
        ticker: String,
        alert_type: AlertKind,
        trigger_price: f64,
        user_id: Option<String>,
    ) -> Result<PriceAlert, AlertsError> {
        match self {
            Alerts::Local(book) => Ok(book.add(ticker, alert_type, trigger_price, user_id)?),
            Alerts::Fleet(redis) => redis.add(ticker, alert_type, trigger_price, user_id).await,
        }
    }

    /// Every armed alert, by id.
    pub async fn list(&self) -> Result<Vec<PriceAlert>, BusError> {
        match self {
            Alerts::Local(book) => Ok(book.list()),
            Alerts::Fleet(redis) => redis.list().await,
        }
    }

    /// The armed alerts by id from `offset`, at most `limit` of them.
    pub async fn page(&self, offset: usize, limit: usize) -> Result<AlertPage, BusError> {
        match self {
            Alerts::Local(book) => Ok(book.page(offset, limit)),
            Alerts::Fleet(redis) => Ok(AlertPage::of(redis.list().await?, offset, limit)),
        }
    }

    /// Disarms an alert; false if no such id.
    pub async fn remove(&self, id: u64) -> Result<bool, BusError> {
        match self {
            Alerts::Local(book) => Ok(book.remove(id)),
            Alerts::Fleet(redis) => redis.remove(id).await,
        }
    }

    /// Checks a new price: the alerts it fired (now disarmed everywhere),
    /// with their triggers, in the order they were armed.
    pub async fn on_price(&self, ticker: &str, price: f64) -> Result<Vec<Fired>, BusError> {
        match self {
            Alerts::Local(book) => Ok(book.on_price(ticker, price)),
            Alerts::Fleet(redis) => Ok(redis
                .on_price(ticker, price)
                .await?
                .into_iter()
                .map(|alert| Fired {
                    trigger: trigger(&alert, price),
                    alert,
                })
                .collect()),
        }
    }

    /// Arms again alerts that fired but whose triggers were not published.
    pub async fn restore(&self, alerts: Vec<PriceAlert>) -> Result<(), BusError> {
        match self {
            Alerts::Local(book) => {
                book.restore(alerts);
                Ok(())
            }
            Alerts::Fleet(redis) => redis.restore(&alerts).await,
        }
    }
}
