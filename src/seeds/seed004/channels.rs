//! A `/ws` connection's seed 004 channels (`price_updates`, `signals`,
//! `trades`, `portfolio`): what it is subscribed to, and the rooms that
//! follow from it. Spec §4.2's per-channel reading:
//!
//! * auto-subscription sets every channel not yet chosen to "all symbols";
//! * the first `subscribe` to a channel replaces its "all" with the listed
//!   set, later ones add to it; one without `symbols` means all symbols;
//! * `unsubscribe` with `symbols` removes them (from "all": from the
//!   currently quoted symbols), without `symbols` drops the channel;
//! * channels never mentioned stay as they were; `portfolio` ignores
//!   `symbols` (one account).
//!
//! Rooms: prices for all symbols are `s004:prices`, a narrowed set is one
//! `s004:prices?<SYM,…>` room (held in [`PriceSets`], so equal sets share
//! one batch); signals and trades are `s004:<channel>` or one
//! `s004:<channel>:<SYM>` room per symbol; the portfolio is
//! `s004:portfolio`. A change is applied whole or not at all.
//!
//! [`PriceSets`]: crate::sources::trading::price_sets::PriceSets

use std::collections::BTreeSet;
use std::sync::Arc;

use simd_json::prelude::*;

use crate::catalog::{MAX_SET_SYMBOLS, RoomName, normalize_ticker};
use crate::dialect::{Greeting, JoinError, Link};
use crate::protocol::{Envelope, Neutral};
use crate::sources::trading::Trading;
use crate::sources::trading::health::Stream;
use crate::sources::trading::price_sets::PriceSetLease;

/// Longest symbol echoed in an error.
const SHOWN: usize = 32;

/// What a channel delivers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Sub {
    /// Nothing.
    #[default]
    Off,
    /// Every symbol.
    All,
    /// These symbols (normalised, never empty).
    Set(BTreeSet<String>),
}

/// One channel's state.
#[derive(Debug, Default)]
struct Channel {
    /// What it delivers.
    sub: Sub,
    /// Whether the client chose it (a `subscribe` or `unsubscribe`): auto
    /// subscription leaves it alone, and cancelling auto subscription too.
    chosen: bool,
}

/// A connection's seed 004 channels.
#[derive(Debug)]
pub struct Channels {
    /// Quotes (for "unsubscribe from all"), price sets, settings.
    trading: Arc<Trading>,
    /// By [`Stream`] order.
    channels: [Channel; 4],
    /// The narrowed price set this connection holds.
    price_set: Option<PriceSetLease>,
}

/// Why a seed 004 message was refused: its `error` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Not one of the four channels.
    #[error("Invalid channel: {0}")]
    Channel(String),
    /// A symbol that is not a ticker.
    #[error("Invalid symbol: {0}")]
    Symbol(String),
    /// More rooms or symbols than a connection may hold.
    #[error("Subscription limit reached")]
    Limit,
    /// The node serves `ROOMCAST_WS_MAX_PRICE_FEEDS` sets already.
    #[error("Too many distinct symbol sets on this server")]
    TooManySets,
    /// The node's room cap.
    #[error("Cannot subscribe: room limit reached on this server")]
    Rooms,
    /// A room outside the connection token's grant.
    #[error("Cannot subscribe: {0}")]
    Forbidden(JoinError),
}

impl From<JoinError> for ChannelError {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::TooManySubscriptions(_) => ChannelError::Limit,
            JoinError::TooManyRooms => ChannelError::Rooms,
            e @ JoinError::Forbidden(_) => ChannelError::Forbidden(e),
        }
    }
}

fn stream_of(channel: &str) -> Option<Stream> {
    Stream::ALL.into_iter().find(|s| s.label() == channel)
}

fn shown(text: &str) -> String {
    text.chars().take(SHOWN).collect()
}

/// The greeting of a seed 004 room: its retained (latest) event, flat.
fn greeting(room: RoomName) -> Greeting {
    Box::new(move |retained| {
        retained
            .payloads()
            .filter_map(|json| Neutral::from_wire(room.clone(), json))
            .map(|event| event.frame(Envelope::Flat))
            .collect()
    })
}

impl Channels {
    /// No channel yet.
    pub fn new(trading: Arc<Trading>) -> Self {
        Channels {
            trading,
            channels: Default::default(),
            price_set: None,
        }
    }

    /// Auto-subscription: every channel the client has not chosen gets all
    /// symbols.
    pub fn auto_subscribe(&mut self, link: &mut impl Link) -> Result<(), ChannelError> {
        for stream in Stream::ALL {
            if !self.channels[stream as usize].chosen {
                self.apply(link, stream, Sub::All)?;
            }
        }
        Ok(())
    }

    /// Undoes auto-subscription: every channel the client has not chosen
    /// delivers nothing.
    pub fn cancel_auto(&mut self, link: &mut impl Link) {
        for stream in Stream::ALL {
            if !self.channels[stream as usize].chosen {
                // Leaving never fails.
                let _ = self.apply(link, stream, Sub::Off);
            }
        }
    }

    /// A `subscribe` or `unsubscribe` message.
    pub fn handle(
        &mut self,
        link: &mut impl Link,
        subscribe: bool,
        message: &simd_json::BorrowedValue<'_>,
    ) -> Result<(), ChannelError> {
        let stream = match message.get("channel") {
            None => return Err(ChannelError::Channel("missing 'channel'".into())),
            Some(channel) => match channel.as_str() {
                Some(name) => stream_of(name).ok_or_else(|| ChannelError::Channel(shown(name)))?,
                None => return Err(ChannelError::Channel("'channel' must be a string".into())),
            },
        };
        let symbols = match message.get("symbols") {
            None => None,
            Some(value) if value.is_null() => None,
            Some(value) => {
                let Some(items) = value.as_array() else {
                    return Err(ChannelError::Symbol(
                        "'symbols' must be an array of strings".into(),
                    ));
                };
                if items.len() > MAX_SET_SYMBOLS {
                    return Err(ChannelError::Limit);
                }
                let mut set = BTreeSet::new();
                for item in items {
                    let Some(text) = item.as_str() else {
                        return Err(ChannelError::Symbol(
                            "'symbols' must be an array of strings".into(),
                        ));
                    };
                    set.insert(
                        normalize_ticker(text).map_err(|_| ChannelError::Symbol(shown(text)))?,
                    );
                }
                Some(set)
            }
        };
        let channel = &self.channels[stream as usize];
        let symbols = symbols.filter(|_| stream != Stream::Portfolio);
        if symbols.as_ref().is_some_and(BTreeSet::is_empty) {
            // `symbols: []` names nothing: no change, not even a choice.
            return Ok(());
        }
        let next = match (subscribe, symbols) {
            (true, None) => Sub::All,
            (true, Some(set)) => match (&channel.sub, channel.chosen) {
                // The first subscribe replaces auto's "all"; later ones add.
                (Sub::Set(held), true) => Sub::Set(held.union(&set).cloned().collect()),
                (Sub::All, true) => Sub::All,
                _ => Sub::Set(set),
            },
            (false, None) => Sub::Off,
            (false, Some(set)) => {
                let rest: BTreeSet<String> = match &channel.sub {
                    Sub::Off => BTreeSet::new(),
                    Sub::All => self.trading.quotes.symbols().into_iter().collect(),
                    Sub::Set(held) => held.clone(),
                };
                let rest: BTreeSet<String> = rest.difference(&set).cloned().collect();
                if rest.is_empty() {
                    Sub::Off
                } else {
                    Sub::Set(rest)
                }
            }
        };
        if matches!(&next, Sub::Set(set) if set.len() > MAX_SET_SYMBOLS) {
            return Err(ChannelError::Limit);
        }
        self.apply(link, stream, next)?;
        self.channels[stream as usize].chosen = true;
        Ok(())
    }

    /// The rooms of `stream` delivering `sub`.
    fn rooms_of(stream: Stream, sub: &Sub) -> Vec<RoomName> {
        let symbols: Vec<&String> = match sub {
            Sub::Off => return Vec::new(),
            Sub::All => Vec::new(),
            Sub::Set(set) => set.iter().collect(),
        };
        let all = symbols.is_empty();
        let per_symbol =
            |build: fn(Option<&str>) -> Result<RoomName, crate::catalog::CatalogError>| {
                if all {
                    vec![build(None).expect("the all room")]
                } else {
                    symbols
                        .iter()
                        .map(|s| build(Some(s)).expect("normalised symbols"))
                        .collect()
                }
            };
        match stream {
            Stream::PriceUpdates => {
                let owned: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
                vec![
                    RoomName::s004_prices((!all).then_some(&owned[..]))
                        .expect("a bounded set of normalised symbols"),
                ]
            }
            Stream::Signals => per_symbol(RoomName::s004_signals),
            Stream::Trades => per_symbol(RoomName::s004_trades),
            Stream::Portfolio => vec![RoomName::s004_portfolio()],
        }
    }

    /// Moves `stream` to `next`, whole or not at all: checks the
    /// subscription cap on the rooms it ends with, joins the new rooms,
    /// then leaves the old ones (so nothing published meanwhile is missed;
    /// only when the cap has no room for both does it leave first).
    fn apply(
        &mut self,
        link: &mut impl Link,
        stream: Stream,
        next: Sub,
    ) -> Result<(), ChannelError> {
        let channel = &self.channels[stream as usize];
        if channel.sub == next {
            return Ok(());
        }
        let old = Self::rooms_of(stream, &channel.sub);
        let new = Self::rooms_of(stream, &next);
        let to_join: Vec<&RoomName> = new.iter().filter(|r| !old.contains(r)).collect();
        let to_leave: Vec<&RoomName> = old.iter().filter(|r| !new.contains(r)).collect();
        let free = link.free_subscriptions();
        if to_join.len() > free.saturating_add(to_leave.len()) {
            return Err(ChannelError::Limit);
        }
        let mut lease = None;
        if stream == Stream::PriceUpdates
            && let Some(room) = new.first()
            && !room.symbols().is_empty()
        {
            lease = Some(
                self.trading
                    .price_sets
                    .acquire(room.clone(), self.price_set.as_ref())
                    .map_err(|_| ChannelError::TooManySets)?,
            );
        }
        let leave_first = to_join.len() > free;
        if leave_first {
            for room in &to_leave {
                link.leave(room);
            }
        }
        let mut joined = Vec::new();
        for room in &to_join {
            if let Err(e) = link.join((*room).clone(), greeting((*room).clone())) {
                for room in &joined {
                    link.leave(room);
                }
                if leave_first {
                    // Back to where it was (only the node's room cap fails here).
                    for room in &to_leave {
                        let _ = link.join((*room).clone(), greeting((*room).clone()));
                    }
                }
                return Err(e.into());
            }
            joined.push((*room).clone());
        }
        if !leave_first {
            for room in &to_leave {
                link.leave(room);
            }
        }
        if stream == Stream::PriceUpdates {
            self.price_set = lease;
        }
        self.channels[stream as usize].sub = next;
        Ok(())
    }
}
