//! The paper trader: runs the embedded paper-trading account
//! ([`engine::paper`]) on every new price of the [`QuoteBook`], and
//! publishes what it does:
//!
//! * as seed 004 events (unless `WEBSOCKET_ENABLED=false`): the `signal`,
//!   then its `trade_executed`, then the `portfolio_update` that reflects
//!   it; and a `portfolio_update` every `WEBSOCKET_PORTFOLIO_UPDATE_INTERVAL`
//!   seconds (the first at start, so a new subscriber is greeted with one);
//! * as seed 003 live-trading events ([`super::live`]): a fill's `order`,
//!   `position`, then `pnl` and `risk`; every interval `pnl` and `risk`,
//!   and a `position` `modify` for each open position whose price moved.
//!
//! In a fleet one node trades (the `trading` lease). The account's state
//! lives in Redis: a fill is stored, fenced by the lease, before anything
//! of it is published, so the next leader continues the same account
//! (order and position ids go on; nothing executes twice). A leader killed
//! between the store and the publish leaves that one fill unannounced: its
//! `trade_executed` is never sent, and the next portfolio shows it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::events;
use super::health::{Stream, TradingHealth};
use super::live::{self, PositionEvent};
use super::quotes::QuoteBook;
use crate::bus::{BusError, Producer, RedisBus};
use crate::catalog::RoomName;
use crate::protocol::{Event, Neutral, PriceUpdate, time};
use crate::publisher::Publisher;
use engine::paper::{AccountState, Fill, PaperAccount, PaperSettings};

/// Store the account only while this node holds the lease.
/// KEYS: lease, account. ARGV: node, state.
const STORE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"#;

/// Where a fleet keeps the account.
pub struct AccountStore {
    /// The fleet bus's command connection.
    pub redis: Arc<RedisBus>,
    /// This node's name (the lease's value while it holds it).
    pub node: String,
    /// The `trading` lease's key.
    pub lease_key: String,
    /// The account's key.
    pub key: String,
}

impl AccountStore {
    async fn load(&self) -> Result<Option<AccountState>, BusError> {
        let mut conn = self.redis.commands();
        let json: Option<String> = crate::bus::redis::with_timeout(
            redis::cmd("GET").arg(&self.key).query_async(&mut conn),
        )
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(json.and_then(|json| match serde_json::from_str(&json) {
            Ok(state) => Some(state),
            Err(e) => {
                tracing::error!(error = %e, "stored paper account unreadable; starting afresh");
                None
            }
        }))
    }

    async fn store(&self, state: &AccountState) -> Result<bool, BusError> {
        let json = serde_json::to_string(state).expect("plain data serialises");
        let mut conn = self.redis.commands();
        let stored: i64 = crate::bus::redis::with_timeout(
            Script::new(STORE_LUA)
                .key(&self.lease_key)
                .key(&self.key)
                .arg(&self.node)
                .arg(json)
                .invoke_async(&mut conn),
        )
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(stored == 1)
    }
}

/// The paper trader (see the module docs).
pub struct PaperTrader {
    /// Where events go; whether this node holds the `trading` lease.
    pub publisher: Publisher,
    /// Prices, heard as ticks.
    pub quotes: Arc<QuoteBook>,
    /// `stream_health` of signals, trades and the portfolio.
    pub health: Arc<TradingHealth>,
    /// The account's settings.
    pub settings: PaperSettings,
    /// Between portfolio updates.
    pub portfolio_interval: Duration,
    /// In a fleet: where the account lives.
    pub store: Option<AccountStore>,
    /// Publish seed 004's events (`WEBSOCKET_ENABLED`); seed 003's always.
    pub seed004: bool,
}

/// The market price each open position was last published at (seed 003
/// `position` events), so an interval republishes only those that moved.
type Marks = HashMap<String, f64>;

/// Seed 004's streams the account feeds.
const STREAMS: [Stream; 3] = [Stream::Signals, Stream::Trades, Stream::Portfolio];

impl PaperTrader {
    /// Trades while this node holds the lease, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = self.quotes.ticks();
        let mut portfolio = tokio::time::interval(self.portfolio_interval);
        portfolio.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut account: Option<PaperAccount> = None;
        let mut marks = Marks::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = portfolio.tick() => {
                    account = self.follow_lease(account).await;
                    if let Some(account) = &account {
                        self.handle_interval(account, &mut marks).await;
                    } else {
                        marks.clear();
                    }
                }
                tick = ticks.recv() => match tick {
                    Ok(price) => {
                        if account.is_some() && !self.publisher.holds(Producer::Trading) {
                            account = self.follow_lease(account).await;
                        }
                        if let Some(account) = &mut account {
                            self.handle_tick(account, &price, &mut marks).await;
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "paper account fell behind the prices; ticks skipped");
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
        for stream in STREAMS {
            self.health.stopped(stream);
        }
    }

    /// The account while this node holds the lease: opened (from Redis in
    /// a fleet) when the lease is taken, dropped when it is lost.
    async fn follow_lease(&self, account: Option<PaperAccount>) -> Option<PaperAccount> {
        let holds = self.publisher.holds(Producer::Trading);
        match (account, holds) {
            (Some(account), true) => Some(account),
            (Some(_), false) => {
                tracing::info!("paper account handed over: trading lease lost");
                for stream in STREAMS {
                    self.health.stopped(stream);
                }
                None
            }
            (None, false) => None,
            (None, true) => {
                let now = chrono::Utc::now().timestamp_millis();
                let state = match &self.store {
                    None => AccountState::new(self.settings.cash, now),
                    Some(store) => match store.load().await {
                        Ok(Some(mut state)) => {
                            // No fill happened while nobody traded.
                            state.last_fill_ms = now;
                            state
                        }
                        Ok(None) => AccountState::new(self.settings.cash, now),
                        Err(e) => {
                            tracing::warn!(error = %e, "paper account not loaded; retrying");
                            return None;
                        }
                    },
                };
                tracing::info!(
                    positions = state.positions.len(),
                    cash = state.cash,
                    "paper account trading"
                );
                for stream in STREAMS {
                    self.health.started(stream);
                }
                Some(PaperAccount::new(self.settings, state))
            }
        }
    }

    /// One price: maybe a signal, maybe its fill.
    async fn handle_tick(
        &self,
        account: &mut PaperAccount,
        price: &PriceUpdate,
        marks: &mut Marks,
    ) {
        let before = self.store.as_ref().map(|_| account.state().clone());
        let now = chrono::Utc::now().timestamp_millis();
        let fractional = price.ticker.ends_with("-USD");
        let Some((signal, fill)) = account.on_tick(&price.ticker, price.price, fractional, now)
        else {
            return;
        };
        if let (Some(fill), Some(store), Some(before)) = (&fill, &self.store, before) {
            match store.store(account.state()).await {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    // Not ours to trade (lease lost) or not stored: the fill
                    // never happened, and nothing of it is published.
                    tracing::warn!(order = fill.order_id, "paper fill not stored; discarded");
                    account.restore(before);
                    self.health.failed(Stream::Trades);
                    return;
                }
            }
        }
        let timestamp = time::now();
        if self.seed004 {
            self.publish(Stream::Signals, events::signal(&signal, &timestamp))
                .await;
        }
        let Some(fill) = &fill else {
            return;
        };
        tracing::debug!(order = fill.order_id, symbol = %signal.symbol, side = signal.side.label(), "paper fill");
        if self.seed004 {
            self.publish(Stream::Trades, events::trade_executed(fill, &timestamp))
                .await;
            self.publish_portfolio(account).await;
        }
        self.publish_fill_live(account, fill, &timestamp).await;
        // The account room's state (its greeting) agrees with the positions at once.
        let events = live::account(&account.portfolio(), &account.risk(), &timestamp);
        self.publish_live(&events.map(Event::Neutral)).await;
        match fill.change {
            engine::paper::PositionChange::Close => marks.remove(&fill.position.symbol),
            _ => marks.insert(fill.position.symbol.clone(), fill.price),
        };
    }

    /// Every interval: the portfolio (seed 004), `pnl` and `risk`, and the
    /// open positions whose price moved (seed 003).
    async fn handle_interval(&self, account: &PaperAccount, marks: &mut Marks) {
        if self.seed004 {
            self.publish_portfolio(account).await;
        }
        let timestamp = time::now();
        let positions = &account.state().positions;
        let moved: Vec<_> = positions
            .values()
            .filter(|p| marks.get(&p.symbol) != Some(&p.market_price))
            .collect();
        if !moved.is_empty() {
            let all = RoomName::s003_live(None).expect("the all room");
            let mut events: Vec<Event> = moved
                .iter()
                .map(|p| {
                    Event::Neutral(live::position(
                        all.clone(),
                        p,
                        PositionEvent::Modify,
                        &timestamp,
                    ))
                })
                .collect();
            if let Some(Event::Neutral(last)) = events.pop() {
                let snapshot = live::positions_snapshot(positions.values(), &timestamp);
                events.push(Event::Neutral(last.with_snapshot(snapshot)));
            }
            self.publish_live(&events).await;
            for p in moved {
                let room = RoomName::s003_live(Some(&p.symbol)).expect("a ticker");
                let event = live::position(room, p, PositionEvent::Modify, &timestamp)
                    .with_snapshot(live::positions_snapshot([p], &timestamp));
                self.publish_live(&[Event::Neutral(event)]).await;
                marks.insert(p.symbol.clone(), p.market_price);
            }
        }
        let events = live::account(&account.portfolio(), &account.risk(), &timestamp);
        self.publish_live(&events.map(Event::Neutral)).await;
    }

    /// A fill's seed 003 `order` and `position`, to the "all" room and the
    /// symbol's, each position event with its room's new snapshot.
    async fn publish_fill_live(&self, account: &PaperAccount, fill: &Fill, timestamp: &str) {
        let symbol = &fill.position.symbol;
        let positions = &account.state().positions;
        let all = RoomName::s003_live(None).expect("the all room");
        let one = RoomName::s003_live(Some(symbol)).expect("a ticker");
        let order = live::order(all.clone(), fill, timestamp);
        let position = live::position(all, &fill.position, live::fill_event(fill), timestamp);
        let one_events = [
            Event::Neutral(order.in_room(one.clone())),
            Event::Neutral(
                position
                    .in_room(one)
                    .with_snapshot(live::positions_snapshot(positions.get(symbol), timestamp)),
            ),
        ];
        let all_events = [
            Event::Neutral(order),
            Event::Neutral(
                position.with_snapshot(live::positions_snapshot(positions.values(), timestamp)),
            ),
        ];
        self.publish_live(&all_events).await;
        self.publish_live(&one_events).await;
    }

    /// Publishes one seed 003 room's events together.
    async fn publish_live(&self, events: &[Event]) {
        if let Err(e) = self.publisher.publish_batch(events).await {
            tracing::warn!(error = %e, "live-trading event not published");
        }
    }

    async fn publish_portfolio(&self, account: &PaperAccount) {
        let event = events::portfolio_update(&account.portfolio(), &time::now());
        self.publish(Stream::Portfolio, [event]).await;
    }

    async fn publish<const N: usize>(&self, stream: Stream, events: [Neutral; N]) {
        for event in events {
            if let Err(e) = self.publisher.publish(Event::Neutral(event)).await {
                self.health.failed(stream);
                tracing::warn!(stream = stream.label(), error = %e, "paper account event not published");
                return;
            }
        }
        self.health.published(stream);
    }
}
