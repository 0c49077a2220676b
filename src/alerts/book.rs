//! The alert book of an embedded node: every armed alert in this process,
//! checked under one short lock on each price of its ticker (the fleet's
//! book is in Redis, [`super::fleet`]).

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{AlertError, AlertKind, AlertPage, Fired, PriceAlert, trigger};

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
    /// Armed alerts per user ([`user_key`]), for the per-user cap; a user
    /// without alerts has no entry.
    per_user: HashMap<String, usize>,
}

/// The per-user allowance an alert counts against: its `user_id`, or the
/// empty string that every alert without one shares.
fn user_key(alert_user: Option<&str>) -> &str {
    alert_user.unwrap_or("")
}

impl Book {
    /// Counts `alert` in.
    fn count_in(&mut self, alert: &PriceAlert) {
        self.count += 1;
        *self
            .per_user
            .entry(user_key(alert.user_id.as_deref()).to_string())
            .or_default() += 1;
    }

    /// Counts `alert` out.
    fn count_out(&mut self, alert: &PriceAlert) {
        self.count -= 1;
        let user = user_key(alert.user_id.as_deref());
        if let Some(n) = self.per_user.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(user);
            }
        }
    }
}

/// Every armed alert on this node.
#[derive(Debug)]
pub struct AlertBook {
    /// Alerts and last prices; held briefly, never across `.await`.
    book: Mutex<Book>,
    /// Cap on armed alerts.
    max: usize,
    /// Cap on one user's armed alerts.
    max_per_user: usize,
}

impl AlertBook {
    /// An empty book holding at most `max` alerts, `max_per_user` of one user.
    pub fn new(max: usize, max_per_user: usize) -> Self {
        AlertBook {
            book: Mutex::new(Book::default()),
            max,
            max_per_user,
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
        let users = book.per_user.get(user_key(user_id.as_deref()));
        if users.copied().unwrap_or(0) >= self.max_per_user {
            return Err(AlertError::TooManyForUser(self.max_per_user));
        }
        book.next_id += 1;
        let alert = PriceAlert::new(book.next_id, ticker, alert_type, trigger_price, user_id);
        book.count_in(&alert);
        book.by_ticker
            .entry(alert.ticker.clone())
            .or_default()
            .push(alert.clone());
        Ok(alert)
    }

    /// Every armed alert, by id.
    pub fn list(&self) -> Vec<PriceAlert> {
        self.page(0, usize::MAX).alerts
    }

    /// The armed alerts by id from `offset`, at most `limit` of them (only
    /// those are copied).
    pub fn page(&self, offset: usize, limit: usize) -> AlertPage {
        let book = self.book.lock();
        let mut all: Vec<&PriceAlert> = book.by_ticker.values().flatten().collect();
        all.sort_unstable_by_key(|a| a.id);
        AlertPage {
            total: all.len(),
            alerts: all.into_iter().skip(offset).take(limit).cloned().collect(),
        }
    }

    /// Disarms an alert; false if no such id.
    pub fn remove(&self, id: u64) -> bool {
        let mut book = self.book.lock();
        let mut found = None;
        for (ticker, alerts) in book.by_ticker.iter_mut() {
            if let Some(i) = alerts.iter().position(|a| a.id == id) {
                found = Some((ticker.clone(), alerts.swap_remove(i)));
                break;
            }
        }
        let Some((ticker, alert)) = found else {
            return false;
        };
        book.count_out(&alert);
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
        for f in &fired {
            book.count_out(&f.alert);
        }
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
            book.count_in(&alert);
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
        let book = AlertBook::new(10, 10);
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
        let book = AlertBook::new(1, 1);
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
        let book = AlertBook::new(10, 10);
        book.add("TSLA".into(), AlertKind::Below, 200.0, None)
            .unwrap();
        assert_eq!(book.on_price("TSLA", 200.0).len(), 1);
    }

    #[test]
    fn breakout_needs_a_cross_from_below() {
        let book = AlertBook::new(10, 10);
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
        let book = AlertBook::new(1, 1);
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

    #[test]
    fn each_user_is_capped_and_alerts_without_a_user_share_one_allowance() {
        let book = AlertBook::new(10, 2);
        let arm = |user: Option<&str>| {
            book.add("AAPL".into(), AlertKind::Above, 1e6, user.map(Into::into))
        };
        let first = arm(Some("alice")).unwrap();
        arm(Some("alice")).unwrap();
        assert_eq!(arm(Some("alice")), Err(AlertError::TooManyForUser(2)));
        arm(Some("bob")).unwrap();
        arm(None).unwrap();
        arm(None).unwrap();
        assert_eq!(arm(None), Err(AlertError::TooManyForUser(2)));
        // Deleting or firing one gives the allowance back.
        assert!(book.remove(first.id));
        arm(Some("alice")).unwrap();
        assert_eq!(book.on_price("AAPL", 2e6).len(), 5);
        arm(Some("alice")).unwrap();
        arm(Some("alice")).unwrap();
        // The total cap still holds across users.
        let small = AlertBook::new(2, 2);
        small
            .add("A".into(), AlertKind::Above, 1.0, Some("x".into()))
            .unwrap();
        small
            .add("A".into(), AlertKind::Above, 1.0, Some("y".into()))
            .unwrap();
        assert_eq!(
            small.add("A".into(), AlertKind::Above, 1.0, Some("z".into())),
            Err(AlertError::TooMany(2))
        );
    }

    #[test]
    fn pages_run_by_id_from_the_offset() {
        let book = AlertBook::new(10, 10);
        for price in 1..=5 {
            book.add("AAPL".into(), AlertKind::Above, price as f64 * 1e6, None)
                .unwrap();
        }
        let page = book.page(1, 2);
        assert_eq!(page.total, 5);
        assert_eq!(page.alerts.iter().map(|a| a.id).collect::<Vec<_>>(), [2, 3]);
        assert!(book.page(5, 2).alerts.is_empty());
        assert_eq!(book.page(4, 100).alerts.len(), 1);
        assert_eq!(book.list().len(), 5);
    }
}
