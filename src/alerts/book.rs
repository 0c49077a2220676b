//! The alert book of an embedded node: every armed alert in this process,
//! checked under one short lock on each price of its ticker (the fleet's
//! book is in Redis, [`super::fleet`]).

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{AlertError, AlertKind, Fired, PriceAlert, trigger};

#[derive(Debug, Default)]
struct Book {
    /// Next id to assign.
    next_id: u64,
    /// Armed alerts by ticker.
    by_ticker: HashMap<String, Vec<PriceAlert>>,
    /// Last price seen per ticker with armed alerts (for `breakout` crossings).
    last_price: HashMap<String, f64>,
    /// Armed alerts in total.
    count: usize,
}

/// Every armed alert on this node.
#[derive(Debug)]
pub struct AlertBook {
    /// Alerts and last prices; held briefly, never across `.await`.
    book: Mutex<Book>,
    /// Cap on armed alerts.
    max: usize,
}

impl AlertBook {
    /// An empty book holding at most `max` alerts.
    pub fn new(max: usize) -> Self {
        AlertBook {
            book: Mutex::new(Book::default()),
            max,
        }
    }

    /// Arms an alert (the ticker must already be normalised).
    pub fn add(
        &self,
        ticker: String,
        alert_type: AlertKind,
        trigger_price: f64,
        user_id: Option<String>,
    ) -> Result<PriceAlert, AlertError> {
        let mut book = self.book.lock();
        if book.count >= self.max {
            return Err(AlertError::TooMany(self.max));
        }
        book.next_id += 1;
        let alert = PriceAlert::new(book.next_id, ticker, alert_type, trigger_price, user_id);
        book.by_ticker
            .entry(alert.ticker.clone())
            .or_default()
            .push(alert.clone());
        book.count += 1;
        Ok(alert)
    }

    /// Every armed alert, by id.
    pub fn list(&self) -> Vec<PriceAlert> {
        let book = self.book.lock();
        let mut all: Vec<_> = book.by_ticker.values().flatten().cloned().collect();
        all.sort_by_key(|a| a.id);
        all
    }

    /// Disarms an alert; false if no such id.
    pub fn remove(&self, id: u64) -> bool {
        let mut book = self.book.lock();
        let mut found = None;
        for (ticker, alerts) in book.by_ticker.iter_mut() {
            if let Some(i) = alerts.iter().position(|a| a.id == id) {
                alerts.swap_remove(i);
                found = Some(ticker.clone());
                break;
            }
        }
        let Some(ticker) = found else { return false };
        book.count -= 1;
        if book.by_ticker.get(&ticker).is_some_and(Vec::is_empty) {
            book.by_ticker.remove(&ticker);
            book.last_price.remove(&ticker);
        }
        true
    }

    /// Evaluates a new price; returns the alerts it fired (now disarmed)
    /// with their triggers.
    pub fn on_price(&self, ticker: &str, price: f64) -> Vec<Fired> {
        let mut guard = self.book.lock();
        let book = &mut *guard;
        let previous = book.last_price.get(ticker).copied();
        let Some(alerts) = book.by_ticker.get_mut(ticker) else {
            return Vec::new();
        };
        let mut fired = Vec::new();
        alerts.retain(|alert| {
            let hit = match alert.alert_type {
                AlertKind::Above => price >= alert.trigger_price,
                AlertKind::Below => price <= alert.trigger_price,
                AlertKind::Breakout => {
                    previous.is_some_and(|p| p < alert.trigger_price)
                        && price >= alert.trigger_price
                }
            };
            if hit {
                fired.push(Fired {
                    trigger: trigger(alert, price),
                    alert: alert.clone(),
                });
            }
            !hit
        });
        let empty = alerts.is_empty();
        book.count -= fired.len();
        if empty {
            book.by_ticker.remove(ticker);
            book.last_price.remove(ticker);
        } else {
            book.last_price.insert(ticker.to_string(), price);
        }
        fired
    }

    /// Arms again alerts that fired but whose triggers could not be
    /// published, with their ids: they fire on the next crossing price. They
    /// were counted before, so the cap does not refuse them.
    pub fn restore(&self, alerts: impl IntoIterator<Item = PriceAlert>) {
        let mut book = self.book.lock();
        for alert in alerts {
            book.count += 1;
            book.by_ticker
                .entry(alert.ticker.clone())
                .or_default()
                .push(alert);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn above_fires_once_then_is_removed() {
        let book = AlertBook::new(10);
        book.add("AAPL".into(), AlertKind::Above, 150.0, None)
            .unwrap();
        assert!(book.on_price("AAPL", 149.0).is_empty());
        let fired = book.on_price("AAPL", 150.25);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].trigger.alert_type, "above");
        assert_eq!(fired[0].trigger.current_price, 150.25);
        assert!(book.on_price("AAPL", 151.0).is_empty());
        assert!(book.list().is_empty());
    }

    #[test]
    fn a_restored_alert_is_armed_again_with_its_id_and_fires_on_the_next_cross() {
        let book = AlertBook::new(1);
        let armed = book
            .add("AAPL".into(), AlertKind::Above, 150.0, None)
            .unwrap();
        let fired = book.on_price("AAPL", 151.0);
        book.restore(fired.into_iter().map(|f| f.alert));
        assert_eq!(book.list(), vec![armed.clone()]);
        // Still counted against the cap.
        assert!(
            book.add("MSFT".into(), AlertKind::Above, 1.0, None)
                .is_err()
        );
        assert_eq!(book.on_price("AAPL", 152.0)[0].alert, armed);
    }

    #[test]
    fn below_fires_at_or_under_trigger() {
        let book = AlertBook::new(10);
        book.add("TSLA".into(), AlertKind::Below, 200.0, None)
            .unwrap();
        assert_eq!(book.on_price("TSLA", 200.0).len(), 1);
    }

    #[test]
    fn breakout_needs_a_cross_from_below() {
        let book = AlertBook::new(10);
        book.add("AAPL".into(), AlertKind::Breakout, 150.0, None)
            .unwrap();
        assert!(book.on_price("AAPL", 151.0).is_empty(), "no previous price");
        assert!(book.on_price("AAPL", 152.0).is_empty(), "already above");
        assert!(book.on_price("AAPL", 149.0).is_empty());
        let fired = book.on_price("AAPL", 150.25);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            fired[0].trigger.message,
            "AAPL breaking out at $150.25 (target: $150.00)"
        );
    }

    #[test]
    fn other_tickers_are_untouched_and_cap_is_enforced() {
        let book = AlertBook::new(1);
        let a = book
            .add("AAPL".into(), AlertKind::Above, 1.0, None)
            .unwrap();
        assert!(book.on_price("MSFT", 1000.0).is_empty());
        assert_eq!(
            book.add("MSFT".into(), AlertKind::Above, 1.0, None),
            Err(AlertError::TooMany(1))
        );
        assert!(book.remove(a.id));
        assert!(!book.remove(a.id));
        assert!(book.add("MSFT".into(), AlertKind::Above, 1.0, None).is_ok());
    }
}
