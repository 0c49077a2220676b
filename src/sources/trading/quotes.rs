//! The quote book: the latest seed 001 price of every ticker, whatever
//! published it (the simulator, `POST /api/ws/broadcast/price`, the Redis
//! ingest), recorded by the [`crate::publisher::Publisher`] as each price
//! goes out. The price batcher samples it every interval; the paper
//! account hears each new price as a tick. In a fleet, the node running
//! them also reads the latest price of every ticker room from Redis, so
//! prices published on other nodes count too.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::protocol::PriceUpdate;

/// Ticks the paper account may fall behind before it skips some.
const TICK_BACKLOG: usize = 4_096;

/// The latest price of every ticker.
#[derive(Debug)]
pub struct QuoteBook {
    /// Latest price by ticker.
    quotes: Mutex<HashMap<String, PriceUpdate>>,
    /// Every new price, for the paper account.
    ticks: broadcast::Sender<PriceUpdate>,
}

impl Default for QuoteBook {
    fn default() -> Self {
        QuoteBook {
            quotes: Mutex::new(HashMap::new()),
            ticks: broadcast::channel(TICK_BACKLOG).0,
        }
    }
}

/// One symbol's entry in a seed 004 `price_update` batch: seed 001's price
/// renamed (`change_percent` is `change_pct`; `close` is the last price).
#[derive(Debug, Serialize)]
struct BatchEntry {
    price: f64,
    change: f64,
    change_pct: f64,
    #[serde(serialize_with = "crate::protocol::market::number")]
    volume: f64,
    high: f64,
    low: f64,
    open: f64,
    close: f64,
}

impl QuoteBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a published price, and tells the paper account.
    pub fn record(&self, price: &PriceUpdate) {
        self.quotes
            .lock()
            .insert(price.ticker.clone(), price.clone());
        let _ = self.ticks.send(price.clone());
    }

    /// Records a price read back from the fleet, if it is not the one
    /// already known (so a price counts as one tick however often it is read).
    pub fn record_if_new(&self, price: PriceUpdate) -> bool {
        let mut quotes = self.quotes.lock();
        if quotes.get(&price.ticker) == Some(&price) {
            return false;
        }
        quotes.insert(price.ticker.clone(), price.clone());
        drop(quotes);
        let _ = self.ticks.send(price);
        true
    }

    /// Every new price from now on.
    pub fn ticks(&self) -> broadcast::Receiver<PriceUpdate> {
        self.ticks.subscribe()
    }

    /// Whether `ticker` has a quote.
    pub fn has(&self, ticker: &str) -> bool {
        self.quotes.lock().contains_key(ticker)
    }

    /// The tickers with a quote, sorted.
    pub fn symbols(&self) -> Vec<String> {
        let mut symbols: Vec<String> = self.quotes.lock().keys().cloned().collect();
        symbols.sort_unstable();
        symbols
    }

    /// Every quote as its batch entry, `"AAPL":{…}`, encoded once per
    /// interval and shared by every symbol set's batch.
    pub fn batch_entries(&self) -> BTreeMap<String, Vec<u8>> {
        let quotes: Vec<PriceUpdate> = self.quotes.lock().values().cloned().collect();
        quotes
            .into_iter()
            .map(|q| {
                let mut entry = serde_json::to_vec(&q.ticker).expect("a string serialises");
                entry.push(b':');
                serde_json::to_writer(
                    &mut entry,
                    &BatchEntry {
                        price: q.price,
                        change: q.change,
                        change_pct: q.change_percent,
                        volume: q.volume,
                        high: q.high,
                        low: q.low,
                        open: q.open,
                        close: q.price,
                    },
                )
                .expect("numbers serialise");
                (q.ticker, entry)
            })
            .collect()
    }
}

/// A batch's `data`, `{"symbols":{…}}`, from the entries of `symbols`
/// (every entry when `None`); `None` when none of them is quoted.
pub fn batch_data(
    entries: &BTreeMap<String, Vec<u8>>,
    symbols: Option<&[&str]>,
) -> Option<Vec<u8>> {
    let mut data = Vec::with_capacity(64 * symbols.map_or(entries.len(), <[_]>::len) + 16);
    data.extend_from_slice(br#"{"symbols":{"#);
    let mut any = false;
    let mut push = |entry: &Vec<u8>| {
        if any {
            data.push(b',');
        }
        any = true;
        data.extend_from_slice(entry);
    };
    match symbols {
        None => entries.values().for_each(&mut push),
        Some(symbols) => symbols
            .iter()
            .filter_map(|s| entries.get(*s))
            .for_each(&mut push),
    }
    if !any {
        return None;
    }
    data.extend_from_slice(b"}}");
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(ticker: &str, price: f64) -> PriceUpdate {
        PriceUpdate {
            ticker: ticker.into(),
            price,
            change: 0.5,
            change_percent: 0.33,
            volume: 1_000_000.0,
            high: 151.0,
            low: 149.5,
            open: 150.0,
            timestamp: "2024-12-19T12:00:00Z".into(),
        }
    }

    #[test]
    fn a_batch_holds_the_quoted_symbols_of_its_set_in_seed_004s_names() {
        let book = QuoteBook::new();
        book.record(&price("AAPL", 150.25));
        book.record(&price("MSFT", 380.5));
        let entries = book.batch_entries();
        let all: serde_json::Value =
            serde_json::from_slice(&batch_data(&entries, None).unwrap()).unwrap();
        assert_eq!(all["symbols"].as_object().unwrap().len(), 2);
        assert_eq!(
            all["symbols"]["AAPL"],
            serde_json::json!({"price":150.25,"change":0.5,"change_pct":0.33,"volume":1000000,
                "high":151.0,"low":149.5,"open":150.0,"close":150.25})
        );
        let one: serde_json::Value =
            serde_json::from_slice(&batch_data(&entries, Some(&["AAPL", "NONE"])).unwrap())
                .unwrap();
        assert_eq!(
            one["symbols"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["AAPL"]
        );
        assert_eq!(
            batch_data(&entries, Some(&["NONE"])),
            None,
            "nothing quoted, nothing sent"
        );
    }

    #[test]
    fn a_price_read_back_twice_is_one_tick() {
        let book = QuoteBook::new();
        let mut ticks = book.ticks();
        assert!(book.record_if_new(price("A", 1.0)));
        assert!(!book.record_if_new(price("A", 1.0)));
        assert!(book.record_if_new(price("A", 2.0)));
        assert_eq!(ticks.try_recv().unwrap().price, 1.0);
        assert_eq!(ticks.try_recv().unwrap().price, 2.0);
        assert!(ticks.try_recv().is_err());
        assert_eq!(book.symbols(), ["A"]);
    }
}
