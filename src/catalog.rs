//! The room catalog: every kind of room roomcast serves, how its names are
//! spelled, and the policy that decides its behaviour everywhere in the data
//! path (how a slow member is treated, what the room retains, what a joiner
//! is greeted with, how long its fleet stream is, whether it may be
//! retired). Rooms, outboxes, the fleet bus and the native protocol read a
//! room's [`RoomPolicy`] from its [`RoomName`]; none of them looks at the
//! name's text. Adding a room kind is one row in [`CATALOG`] (and its
//! constructor here), plus the dialect encoder and the seed's folder.
//!
//! This module is a leaf: it imports nothing else of roomcast, so events,
//! dialects, rooms and the bus can all name rooms.

use std::fmt;
use std::sync::Arc;

/// The kinds of room, one per [`CATALOG`] row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoomKind {
    /// `ticker:<SYMBOL>`: one instrument's price updates (seed 001).
    Ticker,
    /// `patterns`: every pattern alert (seed 001).
    Patterns,
    /// `alerts`: every user price alert that fired (seed 001).
    Alerts,
    /// `market_status`: US market open/closed changes (seed 001).
    MarketStatus,
    /// `modeldata` or `modeldata?<canonical query>`: a resampled modeldata
    /// feed (seed 000).
    ModelData,
    /// `topic:<name>`: a seed 002 topic (`backtest`, or any name external
    /// producers publish to); live events only.
    Topic,
    /// `backtest:<id>`: one backtest run (seed 003), replayed whole to late
    /// joiners.
    Backtest,
    /// `s004:prices` or `s004:prices?<SYM,SYM>`: seed 004's price batches
    /// for every quoted symbol, or for one distinct symbol set.
    S004Prices,
    /// `s004:signals` or `s004:signals:<SYM>`: seed 004's trading signals.
    S004Signals,
    /// `s004:trades` or `s004:trades:<SYM>`: seed 004's executions.
    S004Trades,
    /// `s004:portfolio`: seed 004's portfolio of the one account.
    S004Portfolio,
    /// `s003:live` or `s003:live:<SYM>`: seed 003's positions and orders,
    /// of every symbol or of one; greeted with the open positions.
    S003Live,
    /// `s003:account`: seed 003's account-wide `pnl` and `risk`; greeted
    /// with the latest of each.
    S003Account,
    /// `s003:market:<SYM>`: seed 003's market data of one symbol (candles,
    /// patterns, structure, confluence); greeted with its forming candles,
    /// structure and confluence.
    S003Market,
}

/// The event family a room's events belong to: how an event's canonical
/// JSON is read back (from the fleet bus or a stored history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Prices, pattern alerts, alert triggers, market status (seed 001 shapes).
    Market,
    /// Seed 000's modeldata messages, encoded by their feed.
    ModelData,
    /// Backtest runs' events (seeds 002 and 003), neutral.
    Backtest,
    /// Trading and market-data events (seeds 003 and 004), neutral.
    Trading,
}

/// What a member's full outbox does with this room's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryPolicy {
    /// Only the latest frame of the room matters (a price, a status): a slow
    /// member's older frame is replaced.
    ConflateToLatest,
    /// Every frame must arrive, in order: a member whose socket has been
    /// offered a full outbox and not taken it is closed with 4008.
    Ordered,
}

/// What a room keeps after delivering an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// The last `ROOMCAST_HISTORY_SIZE` events; a memberless room goes after
    /// `ROOMCAST_ROOM_IDLE_TTL` without a publish (or sooner, oldest first,
    /// when the node is at `ROOMCAST_MAX_ROOMS`).
    Ring,
    /// The latest event only, retired like [`Retention::Ring`].
    Latest,
    /// Every event of a run, up to `ROOMCAST_BACKTEST_MAX_EVENTS`, kept
    /// `ROOMCAST_BACKTEST_RETENTION` after the last publish (a late joiner
    /// replays the whole run); both are [`crate::rooms::limits::RoomLimits`].
    Run,
    /// No events: only the snapshot events replace. The room goes with its
    /// last member.
    Snapshot,
    /// No events, but the snapshot the last one left (a stream's current
    /// state: open positions, forming candles) is kept after the last member
    /// leaves, and the room is retired like [`Retention::Ring`].
    State,
    /// Nothing: live events only. The room goes with its last member.
    None,
}

/// What a member is sent on joining, ahead of any live event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreetingPolicy {
    /// The retained events, oldest first (framed by the member's dialect).
    History,
    /// The room's snapshot frames (set by the events that carry one).
    Snapshot,
}

/// How a room's Redis stream is bounded in fleet mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetStream {
    /// `ROOMCAST_REDIS_STREAM_LEN` entries, trimmed approximately (`MAXLEN
    /// ~`, cheap); a node reads back its history size on first join.
    Ring,
    /// Exactly the latest entry (`MAXLEN = 1`): its snapshot.
    Latest,
    /// What the room retains (a whole run), trimmed approximately; a node
    /// that joins later loads all of it.
    Retained,
}

/// Everything that decides a room's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomPolicy {
    /// How its events are read back.
    pub family: Family,
    /// Slow members: conflated or closed.
    pub delivery: DeliveryPolicy,
    /// What it keeps.
    pub retention: Retention,
    /// What a joiner gets first.
    pub greeting: GreetingPolicy,
    /// Its Redis stream, in fleet mode.
    pub fleet_stream: FleetStream,
    /// The node publishes into it itself (alerts, patterns, market status):
    /// it exists from start-up and is never retired, so neither the room cap
    /// nor idleness can make those publishes fail.
    pub pinned: bool,
    /// Whether native (`/v1/ws`) clients may subscribe by name. Modeldata
    /// rooms are not: their feeds are started by seed 000 connections'
    /// query options, and their events are seed 000 frames.
    pub native: bool,
}

/// One catalog row: a room kind, how its names read, its policy.
#[derive(Debug, Clone, Copy)]
pub struct CatalogRow {
    /// The kind.
    pub kind: RoomKind,
    /// How its names are spelled (for docs and error messages).
    pub pattern: &'static str,
    /// Its policy.
    pub policy: RoomPolicy,
}

const MARKET_STREAM: RoomPolicy = RoomPolicy {
    family: Family::Market,
    delivery: DeliveryPolicy::Ordered,
    retention: Retention::Ring,
    greeting: GreetingPolicy::History,
    fleet_stream: FleetStream::Ring,
    pinned: true,
    native: true,
};

/// Seed 004's rooms of events that must all arrive (signals, executions):
/// live only.
const TRADING_STREAM: RoomPolicy = RoomPolicy {
    family: Family::Trading,
    delivery: DeliveryPolicy::Ordered,
    retention: Retention::None,
    greeting: GreetingPolicy::History,
    fleet_stream: FleetStream::Ring,
    pinned: false,
    native: true,
};

/// Seed 004's rooms of state sampled at intervals (price batches, the
/// portfolio): the latest one greets a joiner, a slow member gets the
/// newest.
const TRADING_STATE: RoomPolicy = RoomPolicy {
    delivery: DeliveryPolicy::ConflateToLatest,
    retention: Retention::Latest,
    fleet_stream: FleetStream::Latest,
    ..TRADING_STREAM
};

/// Seed 003's live streams: every event must arrive, in order; the state
/// the last one left (open positions, the account, forming candles) greets
/// a joiner, also after every member left.
const LIVE_STATE: RoomPolicy = RoomPolicy {
    retention: Retention::State,
    greeting: GreetingPolicy::Snapshot,
    fleet_stream: FleetStream::Latest,
    ..TRADING_STREAM
};

/// Every room kind roomcast serves, in [`RoomKind`] order.
pub const CATALOG: [CatalogRow; 14] = [
    CatalogRow {
        kind: RoomKind::Ticker,
        pattern: "ticker:<SYMBOL>",
        policy: RoomPolicy {
            delivery: DeliveryPolicy::ConflateToLatest,
            pinned: false,
            ..MARKET_STREAM
        },
    },
    CatalogRow {
        kind: RoomKind::Patterns,
        pattern: "patterns",
        policy: MARKET_STREAM,
    },
    CatalogRow {
        kind: RoomKind::Alerts,
        pattern: "alerts",
        policy: MARKET_STREAM,
    },
    CatalogRow {
        kind: RoomKind::MarketStatus,
        pattern: "market_status",
        policy: RoomPolicy {
            delivery: DeliveryPolicy::ConflateToLatest,
            ..MARKET_STREAM
        },
    },
    CatalogRow {
        kind: RoomKind::ModelData,
        pattern: "modeldata[?<query>]",
        policy: RoomPolicy {
            family: Family::ModelData,
            delivery: DeliveryPolicy::ConflateToLatest,
            retention: Retention::Snapshot,
            greeting: GreetingPolicy::Snapshot,
            fleet_stream: FleetStream::Latest,
            pinned: false,
            native: false,
        },
    },
    CatalogRow {
        kind: RoomKind::Topic,
        pattern: "topic:<name>",
        policy: RoomPolicy {
            family: Family::Backtest,
            delivery: DeliveryPolicy::Ordered,
            retention: Retention::None,
            greeting: GreetingPolicy::History,
            fleet_stream: FleetStream::Ring,
            pinned: false,
            native: true,
        },
    },
    CatalogRow {
        kind: RoomKind::Backtest,
        pattern: "backtest:<id>",
        policy: RoomPolicy {
            family: Family::Backtest,
            delivery: DeliveryPolicy::Ordered,
            retention: Retention::Run,
            greeting: GreetingPolicy::History,
            fleet_stream: FleetStream::Retained,
            pinned: false,
            native: true,
        },
    },
    CatalogRow {
        kind: RoomKind::S004Prices,
        pattern: "s004:prices[?<SYM,SYM>]",
        policy: TRADING_STATE,
    },
    CatalogRow {
        kind: RoomKind::S004Signals,
        pattern: "s004:signals[:<SYMBOL>]",
        policy: TRADING_STREAM,
    },
    CatalogRow {
        kind: RoomKind::S004Trades,
        pattern: "s004:trades[:<SYMBOL>]",
        policy: TRADING_STREAM,
    },
    CatalogRow {
        kind: RoomKind::S004Portfolio,
        pattern: "s004:portfolio",
        policy: TRADING_STATE,
    },
    CatalogRow {
        kind: RoomKind::S003Live,
        pattern: "s003:live[:<SYMBOL>]",
        policy: LIVE_STATE,
    },
    CatalogRow {
        kind: RoomKind::S003Account,
        pattern: "s003:account",
        policy: LIVE_STATE,
    },
    CatalogRow {
        kind: RoomKind::S003Market,
        pattern: "s003:market:<SYMBOL>",
        policy: LIVE_STATE,
    },
];

impl RoomKind {
    /// The kind's catalog row.
    pub fn row(self) -> &'static CatalogRow {
        &CATALOG[self as usize]
    }

    /// The kind's policy.
    pub fn policy(self) -> &'static RoomPolicy {
        &self.row().policy
    }
}

/// A room's name and kind, e.g. `ticker:AAPL`. Cheap to clone (the text is
/// shared); the kind is decided once, when the name is parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName {
    /// The name as clients and the bus spell it.
    text: Arc<str>,
    /// Its catalog row; a function of `text`.
    kind: RoomKind,
}

/// Why a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No catalog row spells names like this.
    #[error("unknown room '{0}' (expected {patterns})", patterns = name_patterns(|_| true))]
    Unknown(String),
    /// A `ticker:` room whose symbol is not a ticker.
    #[error("invalid ticker: {0}")]
    BadTicker(&'static str),
    /// A seed 004 room whose symbols are not tickers, or too many.
    #[error("invalid symbol: {0}")]
    BadSymbol(String),
    /// A `topic:` or `backtest:` room whose name is not 1–`max` characters
    /// of `A-Z a-z 0-9 _ . : -`.
    #[error("invalid {what}: expected 1-{max} characters of letters, digits, '_', '.', ':' or '-'")]
    BadName {
        /// `topic` or `backtest id`.
        what: &'static str,
        /// Its longest spelling.
        max: usize,
    },
}

/// The name patterns of the rows whose policy `open` picks, for error
/// messages: `ticker:<SYMBOL>, patterns, …`.
pub fn name_patterns(open: impl Fn(&RoomPolicy) -> bool) -> String {
    let names: Vec<&str> = CATALOG
        .iter()
        .filter(|row| open(&row.policy))
        .map(|row| row.pattern)
        .collect();
    names.join(", ")
}

/// How every ticker room's name starts.
pub const TICKER_PREFIX: &str = "ticker:";
const PATTERNS: &str = "patterns";
const ALERTS: &str = "alerts";
const MARKET_STATUS: &str = "market_status";
const MODELDATA: &str = "modeldata";
const TOPIC_PREFIX: &str = "topic:";
const BACKTEST_PREFIX: &str = "backtest:";
const S004_PRICES: &str = "s004:prices";
const S004_SIGNALS: &str = "s004:signals";
const S004_TRADES: &str = "s004:trades";
const S004_PORTFOLIO: &str = "s004:portfolio";
const S003_LIVE: &str = "s003:live";
const S003_ACCOUNT: &str = "s003:account";
const S003_MARKET: &str = "s003:market";

/// Most symbols in one seed 004 price set (`s004:prices?…`).
pub const MAX_SET_SYMBOLS: usize = 256;

/// Longest seed 002 topic name.
pub const MAX_TOPIC_LEN: usize = 64;

/// Longest backtest id.
pub const MAX_BACKTEST_ID_LEN: usize = 128;

impl RoomName {
    fn new(text: impl Into<Arc<str>>, kind: RoomKind) -> Self {
        RoomName {
            text: text.into(),
            kind,
        }
    }

    /// Room of one ticker's price updates (`ticker:AAPL`); the ticker is upper-cased.
    pub fn ticker(ticker: &str) -> Self {
        RoomName::new(
            format!("{TICKER_PREFIX}{}", ticker.to_ascii_uppercase()),
            RoomKind::Ticker,
        )
    }

    /// Room of every pattern alert.
    pub fn patterns() -> Self {
        RoomName::new(PATTERNS, RoomKind::Patterns)
    }

    /// Room of every user alert trigger.
    pub fn alerts() -> Self {
        RoomName::new(ALERTS, RoomKind::Alerts)
    }

    /// Room of US market open/closed changes.
    pub fn market_status() -> Self {
        RoomName::new(MARKET_STATUS, RoomKind::MarketStatus)
    }

    /// Room of a modeldata feed (seed 000): `modeldata` for the default options,
    /// `modeldata?<canonical query>` for a connection's own options.
    pub fn modeldata(canonical_query: Option<&str>) -> Self {
        match canonical_query {
            None => RoomName::new(MODELDATA, RoomKind::ModelData),
            Some(q) => RoomName::new(format!("{MODELDATA}?{q}"), RoomKind::ModelData),
        }
    }

    /// Room of a seed 002 topic (`topic:backtest`).
    pub fn topic(topic: &str) -> Result<Self, CatalogError> {
        check_name(topic, "topic", MAX_TOPIC_LEN)?;
        Ok(RoomName::new(
            format!("{TOPIC_PREFIX}{topic}"),
            RoomKind::Topic,
        ))
    }

    /// Room of one backtest run (`backtest:<id>`).
    pub fn backtest(id: &str) -> Result<Self, CatalogError> {
        check_name(id, "backtest id", MAX_BACKTEST_ID_LEN)?;
        Ok(RoomName::new(
            format!("{BACKTEST_PREFIX}{id}"),
            RoomKind::Backtest,
        ))
    }

    /// Seed 004's price batches: every quoted symbol (`symbols` = `None`),
    /// or one set (`s004:prices?AAPL,MSFT`: upper case, sorted, distinct, so
    /// equal sets share one room). An empty set is refused.
    pub fn s004_prices(symbols: Option<&[String]>) -> Result<Self, CatalogError> {
        let Some(symbols) = symbols else {
            return Ok(RoomName::new(S004_PRICES, RoomKind::S004Prices));
        };
        let set = symbol_set(symbols.iter().map(String::as_str))?;
        if set.is_empty() {
            return Err(CatalogError::BadSymbol("empty symbol set".into()));
        }
        Ok(RoomName::new(
            format!("{S004_PRICES}?{}", set.join(",")),
            RoomKind::S004Prices,
        ))
    }

    /// Seed 004's signals: every symbol's, or one symbol's.
    pub fn s004_signals(symbol: Option<&str>) -> Result<Self, CatalogError> {
        Self::per_symbol(S004_SIGNALS, RoomKind::S004Signals, symbol)
    }

    /// Seed 004's executions: every symbol's, or one symbol's.
    pub fn s004_trades(symbol: Option<&str>) -> Result<Self, CatalogError> {
        Self::per_symbol(S004_TRADES, RoomKind::S004Trades, symbol)
    }

    /// Seed 004's portfolio.
    pub fn s004_portfolio() -> Self {
        RoomName::new(S004_PORTFOLIO, RoomKind::S004Portfolio)
    }

    /// Seed 003's positions and orders: every symbol's, or one symbol's.
    pub fn s003_live(symbol: Option<&str>) -> Result<Self, CatalogError> {
        Self::per_symbol(S003_LIVE, RoomKind::S003Live, symbol)
    }

    /// Seed 003's account-wide `pnl` and `risk`.
    pub fn s003_account() -> Self {
        RoomName::new(S003_ACCOUNT, RoomKind::S003Account)
    }

    /// Seed 003's market data of one symbol.
    pub fn s003_market(symbol: &str) -> Result<Self, CatalogError> {
        Self::per_symbol(S003_MARKET, RoomKind::S003Market, Some(symbol))
    }

    fn per_symbol(
        base: &'static str,
        kind: RoomKind,
        symbol: Option<&str>,
    ) -> Result<Self, CatalogError> {
        Ok(match symbol {
            None => RoomName::new(base, kind),
            Some(symbol) => {
                let symbol =
                    normalize_ticker(symbol).map_err(|e| CatalogError::BadSymbol(e.to_string()))?;
                RoomName::new(format!("{base}:{symbol}"), kind)
            }
        })
    }

    /// The symbols of a seed 003 or 004 room: the set of a narrowed price
    /// room, the symbol of a per-symbol room; empty for the "all" rooms.
    pub fn symbols(&self) -> Vec<&str> {
        let rest = match self.kind {
            RoomKind::S004Prices => self.text.strip_prefix("s004:prices?"),
            RoomKind::S004Signals => self.text.strip_prefix("s004:signals:"),
            RoomKind::S004Trades => self.text.strip_prefix("s004:trades:"),
            RoomKind::S003Live => self.text.strip_prefix("s003:live:"),
            RoomKind::S003Market => self.text.strip_prefix("s003:market:"),
            _ => None,
        };
        rest.map_or_else(Vec::new, |rest| rest.split(',').collect())
    }

    /// Every room whose name is fixed (one per kind at most), e.g. `alerts`.
    pub fn fixed() -> [RoomName; 3] {
        [
            RoomName::patterns(),
            RoomName::alerts(),
            RoomName::market_status(),
        ]
    }

    /// Parses a name a client or producer wrote: tickers are normalised
    /// (`ticker:aapl` is `ticker:AAPL`), anything no row spells is refused.
    pub fn parse(name: &str) -> Result<Self, CatalogError> {
        if let Some(ticker) = name.strip_prefix(TICKER_PREFIX) {
            let ticker = normalize_ticker(ticker).map_err(CatalogError::BadTicker)?;
            return Ok(RoomName::ticker(&ticker));
        }
        if let Some(topic) = name.strip_prefix(TOPIC_PREFIX) {
            return RoomName::topic(topic);
        }
        if let Some(id) = name.strip_prefix(BACKTEST_PREFIX) {
            return RoomName::backtest(id);
        }
        if name.starts_with("s004:") || name.starts_with("s003:") {
            return Self::parse_trading(name)
                .ok_or_else(|| CatalogError::Unknown(name.chars().take(64).collect()))?;
        }
        Self::fixed_or_feed(name)
            .ok_or_else(|| CatalogError::Unknown(name.chars().take(64).collect()))
    }

    /// A name as the fleet bus carries it (a channel suffix another node
    /// built): exact, canonical spelling only; `None` for anything else.
    pub fn from_wire(name: &str) -> Option<Self> {
        if let Some(ticker) = name.strip_prefix(TICKER_PREFIX) {
            return normalize_ticker(ticker)
                .ok()
                .filter(|t| t == ticker)
                .map(|t| RoomName::ticker(&t));
        }
        if name.starts_with(TOPIC_PREFIX) || name.starts_with(BACKTEST_PREFIX) {
            // Spelled exactly as parsed: nothing is normalised.
            return RoomName::parse(name).ok();
        }
        if name.starts_with("s004:") || name.starts_with("s003:") {
            return Self::parse_trading(name)?
                .ok()
                .filter(|room| room.as_str() == name);
        }
        Self::fixed_or_feed(name)
    }

    /// A seed 003 or 004 trading room's name: `None` when no row spells
    /// it, an error when its symbols are bad.
    fn parse_trading(name: &str) -> Option<Result<Self, CatalogError>> {
        match name {
            S004_PORTFOLIO => return Some(Ok(RoomName::s004_portfolio())),
            S003_ACCOUNT => return Some(Ok(RoomName::s003_account())),
            _ => {}
        }
        if let Some(symbol) = name
            .strip_prefix(S003_MARKET)
            .and_then(|rest| rest.strip_prefix(':'))
        {
            return Some(RoomName::s003_market(symbol));
        }
        if let Some(rest) = name.strip_prefix(S004_PRICES) {
            return match rest.strip_prefix('?') {
                _ if rest.is_empty() => Some(RoomName::s004_prices(None)),
                Some(set) => {
                    let symbols: Vec<String> = set.split(',').map(str::to_string).collect();
                    Some(RoomName::s004_prices(Some(&symbols)))
                }
                None => None,
            };
        }
        for (base, build) in [
            (
                S004_SIGNALS,
                RoomName::s004_signals as fn(Option<&str>) -> Result<RoomName, CatalogError>,
            ),
            (S004_TRADES, RoomName::s004_trades),
            (S003_LIVE, RoomName::s003_live),
        ] {
            if let Some(rest) = name.strip_prefix(base) {
                return match rest.strip_prefix(':') {
                    _ if rest.is_empty() => Some(build(None)),
                    Some(symbol) => Some(build(Some(symbol))),
                    None => None,
                };
            }
        }
        None
    }

    fn fixed_or_feed(name: &str) -> Option<Self> {
        match name {
            PATTERNS => return Some(RoomName::patterns()),
            ALERTS => return Some(RoomName::alerts()),
            MARKET_STATUS => return Some(RoomName::market_status()),
            _ => {}
        }
        match name.strip_prefix(MODELDATA) {
            Some("") => Some(RoomName::modeldata(None)),
            Some(rest) => rest
                .strip_prefix('?')
                .map(|_| RoomName::new(name, RoomKind::ModelData)),
            None => None,
        }
    }

    /// The room's kind.
    pub fn kind(&self) -> RoomKind {
        self.kind
    }

    /// The room's policy, from the catalog.
    pub fn policy(&self) -> &'static RoomPolicy {
        self.kind.policy()
    }

    /// The room's name as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The run id of a `backtest:` room.
    pub fn backtest_id(&self) -> Option<&str> {
        match self.kind {
            RoomKind::Backtest => self.text.strip_prefix(BACKTEST_PREFIX),
            _ => None,
        }
    }

    /// The ticker of a `ticker:` room.
    pub fn ticker_symbol(&self) -> Option<&str> {
        match self.kind {
            RoomKind::Ticker => self.text.strip_prefix(TICKER_PREFIX),
            _ => None,
        }
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Checks a topic name or run id: 1–`max` characters of `A-Z a-z 0-9 _ . : -`.
fn check_name(name: &str, what: &'static str, max: usize) -> Result<(), CatalogError> {
    let valid = (1..=max).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(CatalogError::BadName { what, max })
    }
}

/// A set of ticker symbols, normalised, sorted and distinct; refused when
/// one is not a ticker or there are more than [`MAX_SET_SYMBOLS`].
pub fn symbol_set<'a>(
    symbols: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, CatalogError> {
    let mut set = symbols
        .into_iter()
        .map(|s| {
            normalize_ticker(s).map_err(|e| {
                CatalogError::BadSymbol(format!(
                    "{}: {e}",
                    s.chars().take(MAX_TICKER_LEN + 4).collect::<String>()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    set.sort_unstable();
    set.dedup();
    if set.len() > MAX_SET_SYMBOLS {
        return Err(CatalogError::BadSymbol(format!(
            "at most {MAX_SET_SYMBOLS} symbols"
        )));
    }
    Ok(set)
}

/// Longest accepted ticker symbol.
pub const MAX_TICKER_LEN: usize = 16;

/// Normalises a ticker symbol (upper case) or says why it is not one:
/// 1–16 characters of `A-Z 0-9 . - ^ = /`, e.g. `AAPL`, `BRK.B`, `BTC-USD`, `^GSPC`, `ES=F`.
pub fn normalize_ticker(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("ticker must not be empty");
    }
    if raw.len() > MAX_TICKER_LEN {
        return Err("ticker must be at most 16 characters");
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'^' | b'=' | b'/'))
    {
        return Err("ticker may contain only letters, digits and . - ^ = /");
    }
    Ok(raw.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_rows_are_in_kind_order() {
        for (index, row) in CATALOG.iter().enumerate() {
            assert_eq!(row.kind as usize, index, "{:?}", row.kind);
        }
    }

    #[test]
    fn every_built_name_parses_back_to_itself_with_its_kind() {
        for room in [
            RoomName::ticker("brk.b"),
            RoomName::patterns(),
            RoomName::alerts(),
            RoomName::market_status(),
            RoomName::modeldata(None),
            RoomName::modeldata(Some("points=10")),
            RoomName::topic("backtest").unwrap(),
            RoomName::backtest("bt-1.2:3_x").unwrap(),
            RoomName::s004_prices(None).unwrap(),
            RoomName::s004_prices(Some(&["msft".into(), "AAPL".into(), "MSFT".into()])).unwrap(),
            RoomName::s004_signals(None).unwrap(),
            RoomName::s004_signals(Some("btc-usd")).unwrap(),
            RoomName::s004_trades(Some("AAPL")).unwrap(),
            RoomName::s004_trades(None).unwrap(),
            RoomName::s004_portfolio(),
            RoomName::s003_live(None).unwrap(),
            RoomName::s003_live(Some("eth-usd")).unwrap(),
            RoomName::s003_account(),
            RoomName::s003_market("BTC-USD").unwrap(),
        ] {
            assert_eq!(RoomName::from_wire(room.as_str()).as_ref(), Some(&room));
            assert_eq!(RoomName::parse(room.as_str()).as_ref(), Ok(&room));
        }
    }

    #[test]
    fn clients_names_are_normalised_and_the_wire_takes_only_canonical_ones() {
        assert_eq!(
            RoomName::parse("ticker:aapl").unwrap(),
            RoomName::ticker("AAPL")
        );
        assert_eq!(RoomName::from_wire("ticker:aapl"), None);
        assert_eq!(RoomName::from_wire("whatever"), None);
        assert_eq!(RoomName::from_wire("modeldatax"), None);
        assert!(matches!(
            RoomName::parse("ticker:"),
            Err(CatalogError::BadTicker(_))
        ));
        assert!(matches!(
            RoomName::parse("topic:"),
            Err(CatalogError::BadName { what: "topic", .. })
        ));
        assert!(RoomName::parse("topic:a b").is_err());
        assert!(RoomName::parse(&format!("backtest:{}", "x".repeat(129))).is_err());
        assert!(RoomName::parse(&format!("backtest:{}", "x".repeat(128))).is_ok());
        assert_eq!(RoomName::from_wire("topic:a/b"), None);
        let unknown = RoomName::parse("whatever").unwrap_err().to_string();
        assert!(unknown.contains("unknown room 'whatever'"), "{unknown}");
        assert!(unknown.contains("ticker:<SYMBOL>"), "{unknown}");
    }

    #[test]
    fn seed_004_names_are_canonical_so_equal_sets_share_a_room() {
        let set = |s: &[&str]| {
            let owned: Vec<String> = s.iter().map(|s| s.to_string()).collect();
            RoomName::s004_prices(Some(&owned))
        };
        assert_eq!(
            set(&["msft", "AAPL", "MSFT"]).unwrap().as_str(),
            "s004:prices?AAPL,MSFT"
        );
        assert_eq!(set(&["AAPL", "MSFT"]), set(&["MSFT", "aapl"]));
        assert!(set(&[]).is_err());
        assert!(set(&["A B"]).is_err());
        let many: Vec<String> = (0..=MAX_SET_SYMBOLS).map(|i| format!("S{i}")).collect();
        assert!(RoomName::s004_prices(Some(&many)).is_err());
        assert_eq!(set(&["B", "A"]).unwrap().symbols(), ["A", "B"]);
        assert_eq!(
            RoomName::s004_trades(Some("aapl")).unwrap().symbols(),
            ["AAPL"]
        );
        assert!(RoomName::s004_signals(None).unwrap().symbols().is_empty());
        // The wire takes only canonical spellings; clients' are normalised.
        assert_eq!(RoomName::from_wire("s004:prices?MSFT,AAPL"), None);
        assert_eq!(RoomName::from_wire("s004:signals:aapl"), None);
        assert_eq!(RoomName::from_wire("s004:pricesx"), None);
        assert_eq!(
            RoomName::parse("s004:prices?MSFT,aapl").unwrap().as_str(),
            "s004:prices?AAPL,MSFT"
        );
        assert!(RoomName::parse("s004:elsewhere").is_err());
        assert!(RoomName::parse("s004:trades:").is_err());
        assert_eq!(
            RoomName::s004_portfolio().policy().delivery,
            DeliveryPolicy::ConflateToLatest
        );
        assert_eq!(
            RoomName::s004_trades(None).unwrap().policy().delivery,
            DeliveryPolicy::Ordered
        );
        assert_eq!(RoomName::s004_portfolio().policy().family, Family::Trading);
    }

    #[test]
    fn policies_come_from_the_rows() {
        assert_eq!(
            RoomName::ticker("A").policy().delivery,
            DeliveryPolicy::ConflateToLatest
        );
        assert_eq!(
            RoomName::alerts().policy().delivery,
            DeliveryPolicy::Ordered
        );
        assert!(RoomName::alerts().policy().pinned);
        let modeldata = RoomName::modeldata(None);
        assert_eq!(modeldata.policy().retention, Retention::Snapshot);
        assert_eq!(modeldata.policy().fleet_stream, FleetStream::Latest);
        assert!(!modeldata.policy().native);
        assert_eq!(RoomName::ticker("A").ticker_symbol(), Some("A"));
        let run = RoomName::backtest("b").unwrap().policy().retention;
        assert_eq!(run, Retention::Run);
        assert_eq!(
            RoomName::topic("t").unwrap().policy().retention,
            Retention::None
        );
        assert_eq!(modeldata.ticker_symbol(), None);
    }

    #[test]
    fn tickers_are_normalised_or_rejected() {
        assert_eq!(normalize_ticker(" aapl ").unwrap(), "AAPL");
        assert_eq!(normalize_ticker("btc-usd").unwrap(), "BTC-USD");
        assert!(normalize_ticker("").is_err());
        assert!(normalize_ticker("A B").is_err());
        assert!(normalize_ticker("ABCDEFGHIJKLMNOPQ").is_err());
    }
}

#[cfg(test)]
mod proptests {
    //! Ticker symbols and room names against their definitions, over
    //! arbitrary text (mostly near-valid symbols, so both sides are covered).
    use proptest::prelude::*;

    use super::*;

    /// Text that is often, but not always, a valid ticker.
    fn ticker_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ \t]{0,2}[A-Za-z0-9.^=/-]{0,18}[ \t]{0,2}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn normalize_ticker_accepts_exactly_the_documented_symbols_and_is_idempotent(
            raw in ticker_like(),
        ) {
            let trimmed = raw.trim();
            let valid = (1..=MAX_TICKER_LEN).contains(&trimmed.len())
                && trimmed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-^=/".contains(&b));
            match normalize_ticker(&raw) {
                Ok(ticker) => {
                    prop_assert!(valid, "accepted {:?}", raw);
                    prop_assert_eq!(&ticker, &trimmed.to_ascii_uppercase());
                    prop_assert_eq!(normalize_ticker(&ticker), Ok(ticker.clone()));
                    let room = RoomName::ticker(&ticker);
                    prop_assert_eq!(room.ticker_symbol(), Some(ticker.as_str()));
                    prop_assert_eq!(room.kind(), RoomKind::Ticker);
                    prop_assert_eq!(RoomName::parse(&format!("ticker:{raw}")), Ok(room));
                }
                Err(_) => prop_assert!(!valid, "refused {:?}", raw),
            }
        }

        #[test]
        fn only_modeldata_feed_names_are_modeldata_rooms(name in "(modeldata)?[a-z?=&:]{0,12}") {
            let room = RoomName::from_wire(&name);
            let is_feed = name == "modeldata" || name.starts_with("modeldata?");
            prop_assert_eq!(room.as_ref().map(RoomName::kind) == Some(RoomKind::ModelData), is_feed);
            if let Some(query) = name.strip_prefix("modeldata?") {
                prop_assert_eq!(Some(RoomName::modeldata(Some(query))), room);
            }
        }

        #[test]
        fn a_name_the_wire_accepts_is_spelled_exactly_as_its_room(name in "(ticker:|modeldata)?[A-Za-z?=&:_]{0,14}") {
            if let Some(room) = RoomName::from_wire(&name) {
                prop_assert_eq!(room.as_str(), name.as_str());
                prop_assert_eq!(RoomName::parse(&name), Ok(room));
            }
        }
    }
}
