//! Fuzzes how HTTP bodies become validated values: `parse_event` (everything
//! `POST /api/ws/broadcast/{price,pattern,alert,market_status}` does before
//! publishing: `parse_json` into the body's shape, then its validation) and
//! `parse_new_alert` (the same for `POST /api/alerts`), and the seed 001
//! event JSON that the Redis bus and ingest channels parse into
//! `roomcast::protocol::Event`. The input's first byte picks the endpoint,
//! the rest is the body. Invariants:
//!
//! * a body that is not JSON (as `roomcast_fuzz::is_json` decides from RFC
//!   8259, nesting at most 127 deep: serde_json's limit) is refused as
//!   malformed (400), whatever else is wrong with it, even when the fault
//!   is in a field the shape ignores (invalid UTF-8, a lone surrogate
//!   escape); a JSON body is never refused as malformed;
//! * a 422 names one of the shape's fields (as the body spells it: `open`
//!   or `open_price`; or a path inside one, `alert_type.below`), `(body)`
//!   when the body as a whole is wrong (not an object, or `open_price`
//!   given under both its names), or an index `[N]` when the body is an
//!   array (serde reads a struct from an array positionally);
//! * for an object (a key given twice counts with its last value, as in
//!   Python's `json`), an independent model of the documented rules
//!   decides: the body is accepted exactly when every field has its type
//!   and passes validation (ticker 1–16 of `A-Z a-z 0-9 . - ^ = /` around
//!   whitespace, upper-cased; prices any finite number; `low ≤ high`, both
//!   defaulting to the price; `change`s finite; volume zero or positive;
//!   labels not blank, at most 64 bytes (`status` 32); messages at most 1024
//!   bytes; timestamps RFC 3339 at an instant whose UTC year is 0000–9999;
//!   a `risk_reward_ratio` computed from the prices finite; alert kinds
//!   `above`, `below`, `breakout`; user ids 1–64 of letters, digits,
//!   `_ - . @`), and a refusal names a field the model finds wrong;
//! * an accepted body gives exactly the value the model predicts: the
//!   body's numbers and text unchanged (only the ticker normalised),
//!   timestamps exactly as sent, or the current time in the wire format
//!   (`YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC) when absent; a computed `risk_reward_ratio` finite and within rounding of
//!   `(target − entry) / (entry − stop)`, a default message naming the
//!   ticker; every number in the event finite;
//! * the event's room is the one its endpoint implies (`ticker:<TICKER>`,
//!   `patterns`, `alerts`, `market_status`);
//! * every accepted event, and every event the bus parses, has a canonical
//!   frame that is a valid server text frame, parses back to the same event,
//!   and re-encodes to the same bytes (what a fleet node receives is what
//!   the publishing node sent).
#![no_main]

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use libfuzzer_sys::fuzz_target;
use roomcast::alerts::AlertKind;
use roomcast::frame;
use roomcast::http::response::HttpError;
use roomcast::protocol::{
    AlertTrigger, Event, MarketEvent, MarketStatus, PatternAlert, PriceUpdate,
};
use roomcast::seeds::seed001::alerts::{NewAlert, parse_new_alert};
use roomcast::seeds::seed001::publish::{Broadcast, parse_event};
use roomcast_fuzz::{HTTP_MAX_DEPTH, assert_server_json_frame, is_json};
use serde_json::{Map, Value};

/// Each shape's fields in declaration order (how serde reads an array).
const PRICE_FIELDS: &[&str] = &[
    "ticker",
    "price",
    "change",
    "change_percent",
    "volume",
    "high",
    "low",
    "open_price",
    "timestamp",
];
const PATTERN_FIELDS: &[&str] = &[
    "ticker",
    "pattern_type",
    "score",
    "entry_price",
    "stop_price",
    "target_price",
    "risk_reward_ratio",
    "message",
    "timestamp",
];
const ALERT_FIELDS: &[&str] = &[
    "ticker",
    "alert_type",
    "trigger_price",
    "current_price",
    "message",
    "timestamp",
];
const MARKET_STATUS_FIELDS: &[&str] = &["status", "next_open", "next_close", "timestamp"];
const NEW_ALERT_FIELDS: &[&str] = &["ticker", "alert_type", "trigger_price", "user_id"];
/// `open_price`'s other name.
const OPEN_ALIAS: &str = "open";
/// Field named by a 422 when the body as a whole is wrong.
const WHOLE_BODY: &str = "(body)";

/// Longest ticker, label and message (bytes), as documented.
const MAX_TICKER: usize = 16;
const MAX_LABEL: usize = 64;
const MAX_STATUS: usize = 32;
const MAX_MESSAGE: usize = 1024;
const MAX_USER_ID: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&shape, body)) = data.split_first() else {
        return;
    };
    match shape % 6 {
        0 => check_broadcast(Broadcast::Price, body),
        1 => check_broadcast(Broadcast::Pattern, body),
        2 => check_broadcast(Broadcast::Alert, body),
        3 => check_broadcast(Broadcast::MarketStatus, body),
        4 => check_new_alert(body),
        // As the Redis bus and ingest channels parse events (no parse_json).
        _ => {
            if let Ok(event) = serde_json::from_slice::<MarketEvent>(body) {
                check_canonical_round_trip(&Event::from(event));
            }
        }
    }
});

/// What the model says of a body.
enum Verdict<T> {
    /// Accepted, giving this value (with the parts only the code under test
    /// can know left to `Unknown`).
    Accept(T, Unknown),
    /// Refused; the 422 names one of these fields.
    Refuse(Vec<&'static str>),
}

/// Parts of an accepted value the model leaves to checks of their own.
#[derive(Debug, Default)]
struct Unknown {
    /// The timestamp is the current time (none in the body).
    now: bool,
    /// The message is the default one (none in the body).
    default_message: bool,
    /// The risk/reward ratio is computed (none in the body).
    computed_ratio: bool,
}

fn fields_of(kind: Broadcast) -> &'static [&'static str] {
    match kind {
        Broadcast::Price => PRICE_FIELDS,
        Broadcast::Pattern => PATTERN_FIELDS,
        Broadcast::Alert => ALERT_FIELDS,
        Broadcast::MarketStatus => MARKET_STATUS_FIELDS,
    }
}

fn check_broadcast(kind: Broadcast, body: &[u8]) {
    let fields = fields_of(kind);
    let result = parse_event(kind, body);
    let Some((fields_given, is_object)) = body_fields(body, fields) else {
        // Not JSON, a scalar, a long array.
        match result {
            Ok(event) => {
                assert_json(body);
                check_event(kind, &event);
            }
            Err(e) => check_refusal(&e, body, fields, None),
        }
        return;
    };
    let verdict = match kind {
        Broadcast::Price => model_price(&fields_given),
        Broadcast::Pattern => model_pattern(&fields_given),
        Broadcast::Alert => model_alert(&fields_given),
        Broadcast::MarketStatus => model_market_status(&fields_given),
    };
    match (result, verdict) {
        (Ok(event), Verdict::Accept(mut expected, unknown)) => {
            check_event(kind, &event);
            settle_unknowns(&mut expected, &event, &unknown);
            assert_eq!(event, expected, "accepted, but not as the model predicts");
        }
        (Ok(event), Verdict::Refuse(wrong)) => {
            panic!("accepted {event:?}, but the model refuses it (fields {wrong:?})")
        }
        (Err(e), Verdict::Accept(expected, _)) if is_object => {
            panic!("refused ({e:?}), but the model accepts it as {expected:?}")
        }
        (Err(e), Verdict::Accept(..)) => check_refusal(&e, body, fields, None),
        (Err(e), Verdict::Refuse(wrong)) => {
            check_refusal(&e, body, fields, is_object.then_some(&wrong[..]))
        }
    }
}

fn check_new_alert(body: &[u8]) {
    let result = parse_new_alert(body);
    let Some((fields_given, is_object)) = body_fields(body, NEW_ALERT_FIELDS) else {
        match result {
            Ok(alert) => {
                assert_json(body);
                check_new_alert_value(&alert);
            }
            Err(e) => check_refusal(&e, body, NEW_ALERT_FIELDS, None),
        }
        return;
    };
    match (result, model_new_alert(&fields_given)) {
        (Ok(alert), Verdict::Accept(expected, _)) => {
            check_new_alert_value(&alert);
            assert_eq!(alert, expected, "accepted, but not as the model predicts");
        }
        (Ok(alert), Verdict::Refuse(wrong)) => {
            panic!("accepted {alert:?}, but the model refuses it (fields {wrong:?})")
        }
        (Err(e), Verdict::Accept(expected, _)) if is_object => {
            panic!("refused ({e:?}), but the model accepts it as {expected:?}")
        }
        (Err(e), Verdict::Accept(..)) => check_refusal(&e, body, NEW_ALERT_FIELDS, None),
        (Err(e), Verdict::Refuse(wrong)) => {
            check_refusal(&e, body, NEW_ALERT_FIELDS, is_object.then_some(&wrong[..]))
        }
    }
}

fn assert_json(body: &[u8]) {
    assert!(
        is_json(body, HTTP_MAX_DEPTH),
        "accepted a body that is not JSON"
    );
}

/// The fields a JSON body gives, by name, and whether it is an object: an
/// object's entries (a key given twice with its last value, as `parse_json`
/// reads it), or an array's elements named in declaration order. `None` for
/// anything else.
fn body_fields(body: &[u8], order: &[&str]) -> Option<(Map<String, Value>, bool)> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(map) => Some((map, true)),
        Value::Array(items) if items.len() <= order.len() => Some((
            order.iter().map(|k| k.to_string()).zip(items).collect(),
            false,
        )),
        _ => None,
    }
}

/// Checks a refusal: 400 exactly when the body is not JSON; a 422 names a
/// field of the shape, `(body)` or an array index, as the body's form
/// allows; and one of `wrong` when the model says which fields are wrong.
fn check_refusal(error: &HttpError, body: &[u8], fields: &[&str], wrong: Option<&[&str]>) {
    let json = is_json(body, HTTP_MAX_DEPTH);
    let (field, message) = match error {
        HttpError::BadJson(e) => {
            assert!(!json, "valid JSON refused as malformed: {e}");
            return;
        }
        HttpError::Field { field, message } => {
            assert!(
                json,
                "malformed JSON refused as a field error (422): {message}"
            );
            (field.as_str(), message)
        }
        other => panic!("a body refused with {other:?}"),
    };
    // A path inside a field names it first (`alert_type.below`: serde's
    // tagged form of an enum).
    let top = field.split(['.', '[']).next().unwrap_or(field);
    let top = if top.is_empty() { field } else { top };
    let is_field = fields.contains(&top) || (fields == PRICE_FIELDS && top == OPEN_ALIAS);
    let value = serde_json::from_slice::<Value>(body)
        .unwrap_or_else(|e| panic!("serde_json refuses a JSON body ({e})"));
    match value {
        Value::Object(_) => {
            // `(body)` only where the model expects it (checked below).
            assert!(
                is_field || (field == WHOLE_BODY && wrong.is_some()),
                "422 names {field:?}, not a field of the body ({message})"
            );
        }
        Value::Array(items) => {
            let index = field
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|n| n.parse::<usize>().ok());
            assert!(
                is_field || field == WHOLE_BODY || index.is_some_and(|i| i < items.len()),
                "422 names {field:?}, not a field of the body or an index ({message})"
            );
        }
        _ => assert_eq!(
            field, WHOLE_BODY,
            "422 for a body that is not an object ({message})"
        ),
    }
    if let Some(wrong) = wrong {
        assert!(
            wrong.contains(&top),
            "422 names {field:?}, but the model finds only {wrong:?} wrong ({message})"
        );
    }
}

// ---------------------------------------------------------------------------
// The model: the documented rules, applied to the body's JSON values.

/// Reads typed fields from a body's entries as serde would, noting every
/// field whose value has the wrong type (or is missing when required).
struct Fields<'a> {
    map: &'a Map<String, Value>,
    mistyped: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Fields {
            map,
            mistyped: Vec::new(),
        }
    }

    fn wrong<T>(&mut self, name: &'static str) -> Option<T> {
        self.mistyped.push(name);
        None
    }

    /// A required string.
    fn string(&mut self, name: &'static str) -> Option<&'a str> {
        match self.map.get(name) {
            Some(Value::String(s)) => Some(s),
            _ => self.wrong(name),
        }
    }

    /// An optional string (absent or `null`: `None`).
    fn optional_string(&mut self, name: &'static str) -> Option<Option<&'a str>> {
        match self.map.get(name) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            _ => self.wrong(name),
        }
    }

    /// A required number (any JSON number; never NaN or infinite).
    fn number(&mut self, name: &'static str) -> Option<f64> {
        match self.map.get(name) {
            Some(Value::Number(n)) => n.as_f64(),
            _ => self.wrong(name),
        }
    }

    /// A number defaulting to 0 when absent (`null` is a type error).
    fn number_or_zero(&mut self, name: &'static str) -> Option<f64> {
        match self.map.get(name) {
            None => Some(0.0),
            Some(Value::Number(n)) => n.as_f64(),
            _ => self.wrong(name),
        }
    }

    /// An optional number (absent or `null`: `None`).
    fn optional_number(&mut self, name: &'static str) -> Option<Option<f64>> {
        match self.map.get(name) {
            None | Some(Value::Null) => Some(None),
            Some(Value::Number(n)) => Some(n.as_f64()),
            _ => self.wrong(name),
        }
    }

    /// Every field had its type.
    fn typed(&self) -> bool {
        self.mistyped.is_empty()
    }
}

/// Collects the fields that fail validation.
#[derive(Default)]
struct Invalid(Vec<&'static str>);

impl Invalid {
    fn unless(&mut self, ok: bool, field: &'static str) {
        if !ok {
            self.0.push(field);
        }
    }

    fn finite(&mut self, value: f64, field: &'static str) -> f64 {
        self.unless(value.is_finite(), field);
        value
    }

    fn ticker(&mut self, raw: &str) -> String {
        let ticker = normalized_ticker(raw);
        self.unless(ticker.is_some(), "ticker");
        ticker.unwrap_or_default()
    }

    fn label(&mut self, raw: &str, max: usize, field: &'static str) -> String {
        self.unless(!raw.trim().is_empty() && raw.len() <= max, field);
        raw.to_string()
    }

    fn message(&mut self, raw: Option<&str>) -> Option<String> {
        self.unless(raw.is_none_or(|m| m.len() <= MAX_MESSAGE), "message");
        raw.map(str::to_string)
    }

    /// An optional RFC 3339 instant in four-digit UTC years, as sent.
    fn instant(&mut self, raw: Option<&str>, field: &'static str) -> Option<String> {
        let valid = raw.map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .ok()
                .and_then(wire_format)
                .map(|_| raw.to_string())
        });
        self.unless(!matches!(valid, Some(None)), field);
        valid.flatten()
    }

    fn verdict<T>(self, value: T, unknown: Unknown) -> Verdict<T> {
        if self.0.is_empty() {
            Verdict::Accept(value, unknown)
        } else {
            Verdict::Refuse(self.0)
        }
    }
}

/// A ticker as documented: 1–16 of `A-Z a-z 0-9 . - ^ = /` once trimmed,
/// upper-cased.
fn normalized_ticker(raw: &str) -> Option<String> {
    let t = raw.trim();
    let valid = (1..=MAX_TICKER).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-^=/".contains(&b));
    valid.then(|| t.to_ascii_uppercase())
}

/// The wire format of an instant (`YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC, the
/// millisecond truncated), written here from its parts; `None` when its UTC
/// year has no four-digit form.
fn wire_format(at: DateTime<FixedOffset>) -> Option<String> {
    let at = at.with_timezone(&Utc);
    if !(0..=9999).contains(&at.year()) {
        return None;
    }
    // chrono holds a leap second as second 59 with 1e9 or more nanoseconds.
    let (second, nanos) = match at.nanosecond() {
        n if n >= 1_000_000_000 => (60, n - 1_000_000_000),
        n => (at.second(), n),
    };
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        second,
        nanos / 1_000_000
    ))
}

/// Whether `s` has the wire format's shape.
fn is_wire_timestamp(s: &str) -> bool {
    const SHAPE: &[u8] = b"0000-00-00T00:00:00.000Z";
    s.len() == SHAPE.len()
        && s.bytes().zip(SHAPE).all(|(b, &want)| match want {
            b'0' => b.is_ascii_digit(),
            _ => b == want,
        })
        && DateTime::parse_from_rfc3339(s).is_ok()
}

/// The timestamp (placeholder: the current time when the body has none).
fn timestamp(invalid: &mut Invalid, raw: Option<&str>, unknown: &mut Unknown) -> String {
    unknown.now = raw.is_none();
    invalid.instant(raw, "timestamp").unwrap_or_default()
}

fn model_price(map: &Map<String, Value>) -> Verdict<Event> {
    let mut f = Fields::new(map);
    let ticker = f.string("ticker");
    let price = f.number("price");
    let change = f.number_or_zero("change");
    let change_percent = f.number_or_zero("change_percent");
    let volume = f.number_or_zero("volume");
    let high = f.optional_number("high");
    let low = f.optional_number("low");
    let open = match (map.contains_key("open_price"), map.contains_key(OPEN_ALIAS)) {
        (true, true) => f.wrong(WHOLE_BODY), // the same field twice
        (_, true) => f.optional_number(OPEN_ALIAS),
        _ => f.optional_number("open_price"),
    };
    let raw_timestamp = f.optional_string("timestamp");
    if !f.typed() {
        return Verdict::Refuse(f.mistyped);
    }
    let (Some(ticker), Some(price), Some(change), Some(change_percent), Some(volume)) =
        (ticker, price, change, change_percent, volume)
    else {
        unreachable!("typed");
    };
    let (high, low, open, raw_timestamp) = (
        high.flatten(),
        low.flatten(),
        open.flatten(),
        raw_timestamp.flatten(),
    );
    let mut invalid = Invalid::default();
    let mut unknown = Unknown::default();
    let price = invalid.finite(price, "price");
    let high = invalid.finite(high.unwrap_or(price), "high");
    let low = invalid.finite(low.unwrap_or(price), "low");
    invalid.unless(low <= high, "low");
    let event = PriceUpdate {
        ticker: invalid.ticker(ticker),
        price,
        change,
        change_percent,
        volume,
        high,
        low,
        open: invalid.finite(open.unwrap_or(price), "open_price"),
        timestamp: timestamp(&mut invalid, raw_timestamp, &mut unknown),
    };
    invalid.unless(volume >= 0.0, "volume");
    invalid.verdict(Event::from(event), unknown)
}

fn model_pattern(map: &Map<String, Value>) -> Verdict<Event> {
    let mut f = Fields::new(map);
    let ticker = f.string("ticker");
    let pattern_type = f.string("pattern_type");
    let score = f.number("score");
    let entry = f.number("entry_price");
    let stop = f.number("stop_price");
    let target = f.number("target_price");
    let ratio = f.optional_number("risk_reward_ratio");
    let message = f.optional_string("message");
    let raw_timestamp = f.optional_string("timestamp");
    if !f.typed() {
        return Verdict::Refuse(f.mistyped);
    }
    let (Some(ticker), Some(pattern_type), Some(score), Some(entry), Some(stop), Some(target)) =
        (ticker, pattern_type, score, entry, stop, target)
    else {
        unreachable!("typed");
    };
    let (ratio, message, raw_timestamp) =
        (ratio.flatten(), message.flatten(), raw_timestamp.flatten());
    let mut invalid = Invalid::default();
    let mut unknown = Unknown {
        computed_ratio: ratio.is_none(),
        default_message: message.is_none(),
        ..Unknown::default()
    };
    // Without a ratio in the body, (target − entry) / (entry − stop) is
    // computed and rounded to two decimals, and must be finite (prices near
    // f64::MAX overflow it).
    invalid.unless(
        ratio.is_some() || entry == stop || ((target - entry) / (entry - stop) * 100.0).is_finite(),
        "risk_reward_ratio",
    );
    let event = PatternAlert {
        ticker: invalid.ticker(ticker),
        pattern_type: invalid.label(pattern_type, MAX_LABEL, "pattern_type"),
        score,
        entry_price: invalid.finite(entry, "entry_price"),
        stop_price: invalid.finite(stop, "stop_price"),
        target_price: invalid.finite(target, "target_price"),
        risk_reward_ratio: ratio.unwrap_or(f64::NAN),
        message: invalid.message(message).unwrap_or_default(),
        timestamp: timestamp(&mut invalid, raw_timestamp, &mut unknown),
    };
    invalid.verdict(Event::from(event), unknown)
}

fn model_alert(map: &Map<String, Value>) -> Verdict<Event> {
    let mut f = Fields::new(map);
    let ticker = f.string("ticker");
    let alert_type = f.string("alert_type");
    let trigger = f.number("trigger_price");
    let current = f.number("current_price");
    let message = f.optional_string("message");
    let raw_timestamp = f.optional_string("timestamp");
    if !f.typed() {
        return Verdict::Refuse(f.mistyped);
    }
    let (Some(ticker), Some(alert_type), Some(trigger), Some(current)) =
        (ticker, alert_type, trigger, current)
    else {
        unreachable!("typed");
    };
    let (message, raw_timestamp) = (message.flatten(), raw_timestamp.flatten());
    let mut invalid = Invalid::default();
    let mut unknown = Unknown {
        default_message: message.is_none(),
        ..Unknown::default()
    };
    let event = AlertTrigger {
        ticker: invalid.ticker(ticker),
        alert_type: invalid.label(alert_type, MAX_LABEL, "alert_type"),
        trigger_price: invalid.finite(trigger, "trigger_price"),
        current_price: invalid.finite(current, "current_price"),
        message: invalid.message(message).unwrap_or_default(),
        timestamp: timestamp(&mut invalid, raw_timestamp, &mut unknown),
    };
    invalid.verdict(Event::from(event), unknown)
}

fn model_market_status(map: &Map<String, Value>) -> Verdict<Event> {
    let mut f = Fields::new(map);
    let status = f.string("status");
    let next_open = f.optional_string("next_open");
    let next_close = f.optional_string("next_close");
    let raw_timestamp = f.optional_string("timestamp");
    if !f.typed() {
        return Verdict::Refuse(f.mistyped);
    }
    let Some(status) = status else {
        unreachable!("typed");
    };
    let mut invalid = Invalid::default();
    let mut unknown = Unknown::default();
    let event = MarketStatus {
        status: invalid.label(status, MAX_STATUS, "status"),
        next_open: invalid.instant(next_open.flatten(), "next_open"),
        next_close: invalid.instant(next_close.flatten(), "next_close"),
        timestamp: timestamp(&mut invalid, raw_timestamp.flatten(), &mut unknown),
    };
    invalid.verdict(Event::from(event), unknown)
}

fn model_new_alert(map: &Map<String, Value>) -> Verdict<NewAlert> {
    let mut f = Fields::new(map);
    let ticker = f.string("ticker");
    // An enum of unit variants: its name, or serde's externally tagged form
    // `{"above": null}`.
    let kind = match map.get("alert_type") {
        Some(Value::String(name)) => alert_kind(name),
        Some(Value::Object(tagged)) if tagged.len() == 1 => tagged
            .iter()
            .next()
            .filter(|(_, v)| v.is_null())
            .and_then(|(name, _)| alert_kind(name)),
        _ => None,
    };
    if kind.is_none() {
        f.mistyped.push("alert_type");
    }
    let trigger = f.number("trigger_price");
    let user_id = f.optional_string("user_id");
    if !f.typed() {
        return Verdict::Refuse(f.mistyped);
    }
    let (Some(ticker), Some(alert_type), Some(trigger), Some(user_id)) =
        (ticker, kind, trigger, user_id)
    else {
        unreachable!("typed");
    };
    let mut invalid = Invalid::default();
    invalid.unless(user_id.is_none_or(is_user_id), "user_id");
    let alert = NewAlert {
        ticker: invalid.ticker(ticker),
        alert_type,
        trigger_price: invalid.finite(trigger, "trigger_price"),
        user_id: user_id.map(str::to_string),
    };
    invalid.verdict(alert, Unknown::default())
}

fn alert_kind(name: &str) -> Option<AlertKind> {
    match name {
        "above" => Some(AlertKind::Above),
        "below" => Some(AlertKind::Below),
        "breakout" => Some(AlertKind::Breakout),
        _ => None,
    }
}

/// A user id as documented: 1–64 of letters, digits, `_ - . @`.
fn is_user_id(user: &str) -> bool {
    (1..=MAX_USER_ID).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.@".contains(&b))
}

/// Checks the parts of `event` the model left unknown and copies them into
/// `expected`.
fn settle_unknowns(expected: &mut Event, event: &Event, unknown: &Unknown) {
    let (expected_time, time) = match (&mut *expected, event) {
        (
            Event::Market(MarketEvent::PriceUpdate(e)),
            Event::Market(MarketEvent::PriceUpdate(a)),
        ) => (&mut e.timestamp, &a.timestamp),
        (
            Event::Market(MarketEvent::PatternAlert(e)),
            Event::Market(MarketEvent::PatternAlert(a)),
        ) => {
            if unknown.computed_ratio {
                check_computed_ratio(a);
                e.risk_reward_ratio = a.risk_reward_ratio;
            }
            if unknown.default_message {
                assert!(
                    a.message.contains(&a.ticker) && a.message.contains(&a.pattern_type),
                    "default message {:?} names neither ticker nor pattern",
                    a.message
                );
                e.message.clone_from(&a.message);
            }
            (&mut e.timestamp, &a.timestamp)
        }
        (
            Event::Market(MarketEvent::AlertTrigger(e)),
            Event::Market(MarketEvent::AlertTrigger(a)),
        ) => {
            if unknown.default_message {
                assert!(
                    a.message.starts_with(&a.ticker),
                    "default message {:?} does not name the ticker",
                    a.message
                );
                e.message.clone_from(&a.message);
            }
            (&mut e.timestamp, &a.timestamp)
        }
        (
            Event::Market(MarketEvent::MarketStatus(e)),
            Event::Market(MarketEvent::MarketStatus(a)),
        ) => (&mut e.timestamp, &a.timestamp),
        (e, a) => panic!("expected {e:?}, got {a:?}"),
    };
    if unknown.now {
        assert!(
            is_wire_timestamp(time),
            "the current time {time:?} is not in the wire format"
        );
        let at = DateTime::parse_from_rfc3339(time).expect("checked by check_event");
        let off = (Utc::now() - at.with_timezone(&Utc)).num_seconds().abs();
        assert!(off < 86_400, "the current time is {time}");
        expected_time.clone_from(time);
    }
}

/// A computed risk/reward ratio: 0 when entry and stop are equal, else
/// `(target − entry) / (entry − stop)` rounded to two decimals, finite (the
/// model refuses the body otherwise).
fn check_computed_ratio(p: &PatternAlert) {
    let rr = p.risk_reward_ratio;
    if p.entry_price == p.stop_price {
        assert_eq!(rr, 0.0, "risk_reward_ratio without a risk");
        return;
    }
    let ratio = (p.target_price - p.entry_price) / (p.entry_price - p.stop_price);
    assert!(
        rr.is_finite(),
        "risk_reward_ratio computed as {rr} (ratio {ratio}) from entry {}, stop {}, target {}",
        p.entry_price,
        p.stop_price,
        p.target_price
    );
    assert!(
        (rr - ratio).abs() <= 0.005 + 1e-9 * ratio.abs().max(1.0),
        "risk_reward_ratio {rr} is not {ratio} rounded"
    );
}

/// What an accepted event's checks look at.
struct Promised<'a> {
    /// The room its endpoint implies.
    room: String,
    /// Its numbers, by name: all finite.
    numbers: Vec<(&'a str, f64)>,
    /// Its timestamps, by name: all in the wire format.
    times: Vec<(&'a str, &'a str)>,
    /// Its ticker, if it has one: normalised.
    ticker: Option<&'a String>,
}

/// What every accepted event promises, model or not.
fn check_event(kind: Broadcast, event: &Event) {
    let Promised {
        room,
        numbers,
        times,
        ticker,
    } = match (kind, event) {
        (Broadcast::Price, Event::Market(MarketEvent::PriceUpdate(p))) => {
            // Prices may be any finite number (checked with the others below).
            assert!(p.low <= p.high, "low {} above high {}", p.low, p.high);
            assert!(p.volume >= 0.0, "volume {} is negative", p.volume);
            Promised {
                room: format!("ticker:{}", p.ticker),
                numbers: vec![
                    ("price", p.price),
                    ("change", p.change),
                    ("change_percent", p.change_percent),
                    ("volume", p.volume),
                    ("high", p.high),
                    ("low", p.low),
                    ("open", p.open),
                ],
                times: vec![("timestamp", p.timestamp.as_str())],
                ticker: Some(&p.ticker),
            }
        }
        (Broadcast::Pattern, Event::Market(MarketEvent::PatternAlert(p))) => {
            check_label("pattern_type", &p.pattern_type, MAX_LABEL);
            Promised {
                room: "patterns".into(),
                numbers: vec![
                    ("score", p.score),
                    ("entry_price", p.entry_price),
                    ("stop_price", p.stop_price),
                    ("target_price", p.target_price),
                    ("risk_reward_ratio", p.risk_reward_ratio),
                ],
                times: vec![("timestamp", p.timestamp.as_str())],
                ticker: Some(&p.ticker),
            }
        }
        (Broadcast::Alert, Event::Market(MarketEvent::AlertTrigger(a))) => {
            check_label("alert_type", &a.alert_type, MAX_LABEL);
            Promised {
                room: "alerts".into(),
                numbers: vec![
                    ("trigger_price", a.trigger_price),
                    ("current_price", a.current_price),
                ],
                times: vec![("timestamp", a.timestamp.as_str())],
                ticker: Some(&a.ticker),
            }
        }
        (Broadcast::MarketStatus, Event::Market(MarketEvent::MarketStatus(m))) => {
            check_label("status", &m.status, MAX_STATUS);
            let mut times = vec![("timestamp", m.timestamp.as_str())];
            times.extend(m.next_open.as_deref().map(|t| ("next_open", t)));
            times.extend(m.next_close.as_deref().map(|t| ("next_close", t)));
            Promised {
                room: "market_status".into(),
                numbers: vec![],
                times,
                ticker: None,
            }
        }
        (kind, event) => panic!("{kind:?} gave {event:?}"),
    };
    assert_eq!(
        event.room().as_str(),
        room,
        "the event is not for its endpoint's room"
    );
    for (name, value) in numbers {
        assert!(value.is_finite(), "{name} is {value}");
    }
    for (name, time) in times {
        assert!(
            DateTime::parse_from_rfc3339(time)
                .ok()
                .and_then(wire_format)
                .is_some(),
            "{name} {time:?} is not an RFC 3339 timestamp in four-digit years"
        );
    }
    if let Some(ticker) = ticker {
        assert_eq!(
            normalized_ticker(ticker).as_ref(),
            Some(ticker),
            "ticker {ticker:?} is not normalised"
        );
    }
    check_canonical_round_trip(event);
}

fn check_label(name: &str, label: &str, max: usize) {
    assert!(
        !label.trim().is_empty() && label.len() <= max,
        "{name} {label:?} is not a label of at most {max} bytes, not blank"
    );
}

fn check_new_alert_value(alert: &NewAlert) {
    assert_eq!(
        normalized_ticker(&alert.ticker).as_ref(),
        Some(&alert.ticker),
        "ticker {:?} is not normalised",
        alert.ticker
    );
    assert!(
        alert.trigger_price.is_finite(),
        "trigger_price {} is not finite",
        alert.trigger_price
    );
    if let Some(user) = &alert.user_id {
        assert!(is_user_id(user), "user_id {user:?} is not a user id");
    }
}

/// The canonical encoding of an event is a fixpoint of parse-then-encode,
/// read back as the fleet bus reads it (by its room's family).
fn check_canonical_round_trip(event: &Event) {
    let canonical = event.canonical_frame();
    assert_server_json_frame(&canonical);
    let payload = frame::payload(&canonical);
    let Some((again, relayed)) = Event::from_wire(&event.room(), &payload) else {
        panic!(
            "canonical JSON does not parse back: {}",
            String::from_utf8_lossy(&payload)
        )
    };
    assert_eq!(relayed, canonical, "the bus relays the canonical bytes");
    assert_eq!(again.room(), event.room());
    assert_eq!(&again, event, "the event changed on its round trip");
    assert_eq!(
        again.canonical_frame(),
        canonical,
        "re-encoding changed the bytes"
    );
}
