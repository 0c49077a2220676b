//! Per-address admission, at accept time, before a byte is parsed: one
//! address may hold at most `ROOMCAST_MAX_CONNECTIONS_PER_IP` connections
//! (HTTP and WebSocket alike) and open at most `ROOMCAST_CONNECT_RATE_PER_IP`
//! a second (with a burst). A refused connection gets a canned `429` with a
//! JSON reason and is closed, so one client cannot use up the descriptors,
//! the connection cap or the accept loop that every other client needs.
//!
//! Addresses in `ROOMCAST_PEER_LIMIT_EXEMPT` (loopback by default: local
//! proxies, health checks, load tests) are not counted. Behind a proxy every
//! client shares the proxy's address, so exempt it there and limit at the
//! proxy.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ipnet::IpNet;

use crate::config_error::{ConfigError, check_range, invalid};
use crate::telemetry::{Limit, metrics};
use crate::throttle::TokenBucket;

/// A set of networks, parsed from a comma-separated list of addresses and
/// CIDR blocks; `none` is the empty set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressSet(pub Vec<IpNet>);

impl AddressSet {
    /// True when `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl FromStr for AddressSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(AddressSet::default());
        }
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{part:?} is not an IP address or CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AddressSet)
    }
}

impl fmt::Display for AddressSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Per-address connection limits, a section of [`crate::Config`].
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct PeerLimits {
    /// Connections (HTTP and WebSocket) one IP address may hold at once;
    /// beyond it new connections get 429 and are closed.
    #[arg(long, env = "ROOMCAST_MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,

    /// Connections one IP address may open per second (sustained); beyond it
    /// (and its burst) new connections get 429 and are closed.
    #[arg(long, env = "ROOMCAST_CONNECT_RATE_PER_IP", default_value_t = 50)]
    pub connect_rate_per_ip: u32,

    /// Connections one IP address may open back to back above the rate.
    #[arg(long, env = "ROOMCAST_CONNECT_BURST_PER_IP", default_value_t = 100)]
    pub connect_burst_per_ip: u32,

    /// Addresses and CIDR blocks the per-address limits do not apply to
    /// (comma-separated; `none` for none).
    #[arg(
        long,
        env = "ROOMCAST_PEER_LIMIT_EXEMPT",
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub peer_limit_exempt: AddressSet,
}

impl PeerLimits {
    /// Rejects values the server cannot run with, naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "ROOMCAST_MAX_CONNECTIONS_PER_IP",
            self.max_connections_per_ip,
            1,
            10_000_000,
        )?;
        if self.connect_rate_per_ip == 0 {
            return Err(invalid(
                "ROOMCAST_CONNECT_RATE_PER_IP",
                "must be at least 1",
            ));
        }
        if self.connect_burst_per_ip == 0 {
            return Err(invalid(
                "ROOMCAST_CONNECT_BURST_PER_IP",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Why a connection was refused at accept time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerRefusal {
    /// The address already holds its share of connections.
    #[error("too many connections from this address (at most {0})")]
    TooManyConnections(usize),
    /// The address opens connections too fast.
    #[error("connecting too fast from this address (at most {0} per second)")]
    TooFast(u32),
}

impl PeerRefusal {
    /// The whole HTTP response sent before the connection is closed: 429
    /// with `Retry-After` and a JSON reason, like every other HTTP error.
    pub fn response(self) -> Vec<u8> {
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        format!(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn limit(self) -> Limit {
        match self {
            PeerRefusal::TooManyConnections(_) => Limit::PeerConnections,
            PeerRefusal::TooFast(_) => Limit::PeerConnectRate,
        }
    }
}

/// What the registry keeps per address.
#[derive(Debug)]
struct Peer {
    /// Connections from the address that are open now.
    open: usize,
    /// The address's connect-rate bucket; its last draw is the last connect,
    /// after which the address is forgotten once the bucket is full again.
    connects: TokenBucket,
}

/// Connection accounting per address.
#[derive(Debug)]
pub struct Peers {
    /// The limits.
    limits: PeerLimits,
    /// Addresses with open connections or a recent connect.
    map: DashMap<IpAddr, Peer>,
}

/// One admitted connection; its address's count drops when the last clone
/// is dropped. The HTTP connection holds it, and an upgraded WebSocket
/// session keeps a clone, so an address's count covers both. An exempt
/// address's guard counts nothing and allocates nothing.
#[derive(Debug, Clone)]
pub struct PeerGuard {
    /// The counted connection, or `None` for an exempt address; held for
    /// its `Drop`, which gives the slot back.
    _counted: Option<Arc<Counted>>,
}

/// A connection counted against its address.
#[derive(Debug)]
struct Counted {
    /// The registry holding the count.
    peers: Arc<Peers>,
    /// The address.
    ip: IpAddr,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(mut peer) = self.peers.map.get_mut(&self.ip) {
            peer.open = peer.open.saturating_sub(1);
        }
    }
}

impl Peers {
    /// An empty registry enforcing `limits`.
    pub fn new(limits: PeerLimits) -> Arc<Self> {
        Arc::new(Peers {
            limits,
            map: DashMap::new(),
        })
    }

    /// Admits a connection from `ip` at `now`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<PeerGuard, PeerRefusal> {
        let ip = ip.to_canonical();
        if self.limits.peer_limit_exempt.contains(ip) {
            return Ok(PeerGuard { _counted: None });
        }
        let verdict = {
            let (rate, burst) = (
                self.limits.connect_rate_per_ip as f32,
                self.limits.connect_burst_per_ip as f32,
            );
            let mut peer = self.map.entry(ip).or_insert_with(|| Peer {
                open: 0,
                connects: TokenBucket::full(burst, now),
            });
            if peer.open >= self.limits.max_connections_per_ip {
                Err(PeerRefusal::TooManyConnections(
                    self.limits.max_connections_per_ip,
                ))
            } else if !peer.connects.take(rate, burst, now) {
                Err(PeerRefusal::TooFast(self.limits.connect_rate_per_ip))
            } else {
                peer.open += 1;
                Ok(())
            }
        };
        match verdict {
            Ok(()) => Ok(PeerGuard {
                _counted: Some(Arc::new(Counted {
                    peers: Arc::clone(self),
                    ip,
                })),
            }),
            Err(refusal) => {
                metrics().limit_hit(refusal.limit());
                Err(refusal)
            }
        }
    }

    /// Forgets addresses with no open connection whose bucket has refilled;
    /// returns how many are still tracked.
    pub fn sweep(&self, now: Instant) -> usize {
        let refill = Duration::from_secs_f64(
            f64::from(self.limits.connect_burst_per_ip)
                / f64::from(self.limits.connect_rate_per_ip),
        );
        self.map.retain(|_, peer| {
            peer.open > 0 || now.saturating_duration_since(peer.connects.last_draw()) < refill
        });
        self.map.len()
    }

    /// Open connections from `ip` (tests, status).
    pub fn open(&self, ip: IpAddr) -> usize {
        self.map.get(&ip.to_canonical()).map_or(0, |peer| peer.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, rate: u32, burst: u32, exempt: &str) -> PeerLimits {
        PeerLimits {
            max_connections_per_ip: max,
            connect_rate_per_ip: rate,
            connect_burst_per_ip: burst,
            peer_limit_exempt: exempt.parse().unwrap(),
        }
    }

    #[test]
    fn an_address_is_capped_until_a_connection_closes() {
        let peers = Peers::new(limits(2, 1000, 1000, "none"));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        let a = peers.admit(ip, now).unwrap();
        let _b = peers.admit(ip, now).unwrap();
        assert_eq!(
            peers.admit(ip, now).unwrap_err(),
            PeerRefusal::TooManyConnections(2)
        );
        let _c = peers
            .admit(other, now)
            .expect("another address is unaffected");
        drop(a);
        assert_eq!(peers.open(ip), 1);
        peers.admit(ip, now).expect("a slot was freed");
    }

    #[test]
    fn connects_beyond_the_burst_wait_for_the_rate() {
        let peers = Peers::new(limits(1000, 10, 3, "none"));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = Instant::now();
        let guards: Vec<_> = (0..3).map(|_| peers.admit(ip, t0).unwrap()).collect();
        assert_eq!(peers.admit(ip, t0).unwrap_err(), PeerRefusal::TooFast(10));
        // 100 ms later one more token.
        let t1 = t0 + Duration::from_millis(100);
        peers.admit(ip, t1).unwrap();
        assert_eq!(peers.admit(ip, t1).unwrap_err(), PeerRefusal::TooFast(10));
        drop(guards);
    }

    #[test]
    fn exempt_addresses_are_not_counted() {
        let peers = Peers::new(limits(1, 1, 1, "127.0.0.0/8,::1"));
        let now = Instant::now();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let guards: Vec<_> = (0..10)
            .map(|_| peers.admit(loopback, now).unwrap())
            .chain((0..10).map(|_| peers.admit(mapped, now).unwrap()))
            .collect();
        assert_eq!(peers.open(loopback), 0);
        drop(guards);
    }

    #[test]
    fn sweep_forgets_idle_addresses_only() {
        let peers = Peers::new(limits(10, 10, 10, "none"));
        let t0 = Instant::now();
        let busy = peers.admit("10.1.1.1".parse().unwrap(), t0).unwrap();
        drop(peers.admit("10.1.1.2".parse().unwrap(), t0).unwrap());
        assert_eq!(peers.sweep(t0), 2, "the bucket of .2 is not full yet");
        assert_eq!(peers.sweep(t0 + Duration::from_secs(2)), 1);
        drop(busy);
        assert_eq!(peers.sweep(t0 + Duration::from_secs(2)), 0);
    }

    #[test]
    fn address_sets_parse_and_print() {
        let set: AddressSet = "127.0.0.0/8, ::1 ,10.0.0.5".parse().unwrap();
        assert_eq!(set.to_string(), "127.0.0.0/8,::1/128,10.0.0.5/32");
        assert!(set.contains("10.0.0.5".parse().unwrap()));
        assert!(!set.contains("10.0.0.6".parse().unwrap()));
        assert_eq!("none".parse::<AddressSet>().unwrap(), AddressSet::default());
        assert!("10.0.0.0/33".parse::<AddressSet>().is_err());
    }
}
