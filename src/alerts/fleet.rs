//! The fleet's price alerts, kept in Redis so that every node sees the same
//! book: an alert armed through any node is listed and deleted through any
//! node, and fires exactly once, on whichever node a crossing price is
//! published. Each operation is one Lua script, atomic in Redis: two nodes
//! publishing crossing prices at once cannot both fire an alert.
//!
//! Keys, for prefix `P` (`ROOMCAST_REDIS_PREFIX`): `P:alerts:next` (id
//! counter), `P:alerts:all` (hash id → alert JSON: listing, deleting, the
//! cap), `P:alerts:t:<TICKER>` (hash id → alert JSON: what one price is
//! checked against), `P:alerts:last:<TICKER>` (the ticker's last price while
//! it has alerts, for `breakout`). None expires: an alert is armed until it
//! fires or is deleted. The per-user cap is counted when an alert is armed,
//! by scanning `P:alerts:all` for the user's `"user_id":"…"` (at most
//! `ROOMCAST_MAX_ALERTS` values, plain substring searches, in the arming
//! script), so no count can drift from the book when alerts fire or are
//! deleted or restored.

use redis::Script;
use redis::aio::ConnectionManager;

use super::{AlertError, AlertKind, AlertsError, PriceAlert};
use crate::bus::BusError;
use crate::bus::redis::{unavailable, with_timeout};

/// Arms an alert unless the fleet holds `max` already, or its user holds
/// `max_per_user`. KEYS: all, t:<TICKER>. ARGV: max, id, alert JSON,
/// max_per_user, the user's `"user_id":"…"` JSON (empty for an alert without
/// a user: those have no `"user_id":`). Returns 1, 0 at the cap, 2 at the
/// user's cap.
const ADD_LUA: &str = r#"
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local per_user = tonumber(ARGV[4])
local needle = ARGV[5]
local mine = 0
if mine >= per_user then
  return 2
end
for _, json in ipairs(redis.call('HVALS', KEYS[1])) do
  local same
  if needle == '' then
    same = not string.find(json, '"user_id":', 1, true)
  else
    same = string.find(json, needle, 1, true) ~= nil
  end
  if same then
    mine = mine + 1
    if mine >= per_user then
      return 2
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"#;

/// Disarms an alert by id. KEYS: all. ARGV: id, key prefix (`P:alerts:`).
/// Returns 1, or 0 when no such alert is armed.
const REMOVE_LUA: &str = r#"
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then
  return 0
end
local ticker = cjson.decode(json)['ticker']
redis.call('HDEL', KEYS[1], ARGV[1])
local t = ARGV[2] .. 't:' .. ticker
redis.call('HDEL', t, ARGV[1])
if redis.call('HLEN', t) == 0 then
  redis.call('DEL', ARGV[2] .. 'last:' .. ticker)
end
return 1
"#;

/// Checks a ticker's alerts against a new price: fired alerts are disarmed
/// and returned (their JSON). KEYS: all, t:<TICKER>, last:<TICKER>. ARGV:
/// price. `above`: price ≥ trigger; `below`: price ≤ trigger; `breakout`: the
/// previous price below the trigger and this one at or above it.
const ON_PRICE_LUA: &str = r#"
local alerts = redis.call('HGETALL', KEYS[2])
if #alerts == 0 then
  return {}
end
local price = tonumber(ARGV[1])
local previous = tonumber(redis.call('GET', KEYS[3]) or '')
local fired = {}
for i = 1, #alerts, 2 do
  local alert = cjson.decode(alerts[i + 1])
  local trigger = alert['trigger_price']
  local kind = alert['alert_type']
  local hit = false
  if kind == 'above' then
    hit = price >= trigger
  elseif kind == 'below' then
    hit = price <= trigger
  elseif kind == 'breakout' then
    hit = previous ~= nil and previous < trigger and price >= trigger
  end
  if hit then
    fired[#fired + 1] = alerts[i + 1]
    redis.call('HDEL', KEYS[2], alerts[i])
    redis.call('HDEL', KEYS[1], alerts[i])
  end
end
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[3])
else
  redis.call('SET', KEYS[3], ARGV[1])
end
return fired
"#;

/// The fleet's alert book in Redis.
#[derive(Clone)]
pub struct RedisAlerts {
    /// The bus's command connection (multiplexed, reconnecting).
    commands: ConnectionManager,
    /// `P:alerts:`, the prefix of every key here.
    prefix: String,
    /// Cap on armed alerts, fleet-wide (`ROOMCAST_MAX_ALERTS`).
    max: usize,
    /// Cap on one user's armed alerts, fleet-wide (`ROOMCAST_MAX_ALERTS_PER_USER`).
    max_per_user: usize,
    /// [`ADD_LUA`].
    add: Script,
    /// [`REMOVE_LUA`].
    remove: Script,
    /// [`ON_PRICE_LUA`].
    on_price: Script,
}

impl std::fmt::Debug for RedisAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAlerts")
            .field("prefix", &self.prefix)
            .field("max", &self.max)
            .field("max_per_user", &self.max_per_user)
            .finish_non_exhaustive()
    }
}

impl RedisAlerts {
    /// The book under `prefix` (`ROOMCAST_REDIS_PREFIX`), holding at most
    /// `max`, `max_per_user` of one user.
    pub fn new(commands: ConnectionManager, prefix: &str, max: usize, max_per_user: usize) -> Self {
        RedisAlerts {
            commands,
            prefix: format!("{prefix}:alerts:"),
            max,
            max_per_user,
            add: Script::new(ADD_LUA),
            remove: Script::new(REMOVE_LUA),
            on_price: Script::new(ON_PRICE_LUA),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Arms an alert (the ticker already normalised), with a fleet-wide id.
    pub async fn add(
        &self,
        ticker: String,
        alert_type: AlertKind,
        trigger_price: f64,
        user_id: Option<String>,
    ) -> Result<PriceAlert, AlertsError> {
        let mut conn = self.commands.clone();
        let id: u64 = with_timeout(
            redis::cmd("INCR")
                .arg(self.key("next"))
                .query_async(&mut conn),
        )
        .await
        .map_err(unavailable)?;
        let alert = PriceAlert::new(id, ticker, alert_type, trigger_price, user_id);
        let json = serde_json::to_string(&alert).expect("an alert serialises");
        // As serde_json writes it into the alert's JSON, so a substring
        // search finds exactly this user's alerts.
        let needle = alert
            .user_id
            .as_ref()
            .map(|user| serde_json::json!({ "user_id": user }).to_string())
            .map(|object| object[1..object.len() - 1].to_string())
            .unwrap_or_default();
        let mut invocation = self.add.prepare_invoke();
        invocation
            .key(self.key("all"))
            .key(self.key(&format!("t:{}", alert.ticker)))
            .arg(self.max)
            .arg(id)
            .arg(json)
            .arg(self.max_per_user)
            .arg(needle);
        let added: u8 = with_timeout(invocation.invoke_async(&mut conn))
            .await
            .map_err(unavailable)?;
        match added {
            0 => Err(AlertError::TooMany(self.max).into()),
            2 => Err(AlertError::TooManyForUser(self.max_per_user).into()),
            _ => Ok(alert),
        }
    }

    /// Every armed alert in the fleet, by id.
    pub async fn list(&self) -> Result<Vec<PriceAlert>, BusError> {
        let mut conn = self.commands.clone();
        let all: Vec<String> = with_timeout(
            redis::cmd("HVALS")
                .arg(self.key("all"))
                .query_async(&mut conn),
        )
        .await
        .map_err(unavailable)?;
        let mut alerts = decode(all);
        alerts.sort_by_key(|a| a.id);
        Ok(alerts)
    }

    /// Disarms an alert wherever it was armed; false if no such id.
    pub async fn remove(&self, id: u64) -> Result<bool, BusError> {
        let mut conn = self.commands.clone();
        let mut invocation = self.remove.prepare_invoke();
        invocation.key(self.key("all")).arg(id).arg(&self.prefix);
        let removed: u8 = with_timeout(invocation.invoke_async(&mut conn))
            .await
            .map_err(unavailable)?;
        Ok(removed == 1)
    }

    /// Checks `ticker`'s alerts against `price`: returns the alerts it fired,
    /// now disarmed fleet-wide, in the order they were armed.
    pub async fn on_price(&self, ticker: &str, price: f64) -> Result<Vec<PriceAlert>, BusError> {
        let mut conn = self.commands.clone();
        let mut invocation = self.on_price.prepare_invoke();
        invocation
            .key(self.key("all"))
            .key(self.key(&format!("t:{ticker}")))
            .key(self.key(&format!("last:{ticker}")))
            // Rust's shortest round-trip form: Lua's tonumber reads it back exactly.
            .arg(format!("{price:?}"));
        let fired: Vec<String> = with_timeout(invocation.invoke_async(&mut conn))
            .await
            .map_err(unavailable)?;
        let mut fired = decode(fired);
        fired.sort_by_key(|a| a.id);
        Ok(fired)
    }

    /// Arms again alerts that fired but whose triggers could not be published.
    pub async fn restore(&self, alerts: &[PriceAlert]) -> Result<(), BusError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for alert in alerts {
            let json = serde_json::to_string(alert).expect("an alert serialises");
            pipe.hset(self.key("all"), alert.id, &json)
                .ignore()
                .hset(self.key(&format!("t:{}", alert.ticker)), alert.id, &json)
                .ignore();
        }
        let mut conn = self.commands.clone();
        with_timeout(pipe.query_async::<()>(&mut conn))
            .await
            .map_err(unavailable)
    }
}

/// The alerts among `json` values that parse (a value that does not was
/// not written by roomcast; it is logged and skipped).
fn decode(json: Vec<String>) -> Vec<PriceAlert> {
    json.iter()
        .filter_map(|j| match serde_json::from_str(j) {
            Ok(alert) => Some(alert),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable alert in Redis; skipped");
                None
            }
        })
        .collect()
}
