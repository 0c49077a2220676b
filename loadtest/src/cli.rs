//! Command line: options common to every scenario, and one subcommand per
//! scenario. Every duration, count and rate has an upper bound checked in
//! [`Cli::validate`], so no combination of flags makes an unbounded run.

use clap::{Args, Parser, Subcommand};

use crate::dialect::DialectKind;

/// roomcast's load generator: thousands of WebSocket subscribers, HTTP publishers,
/// delivery latency without coordinated omission. Loopback targets only.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about, long_about = None)]
pub struct Cli {
    /// Options shared by every scenario.
    #[command(flatten)]
    pub common: Common,
    /// What to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Options shared by every scenario (accepted before or after the subcommand).
#[derive(Debug, Args)]
pub struct Common {
    /// Base URL of a server under test (loopback only). Repeat or comma-separate
    /// for several nodes: subscribers are spread round-robin over them.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8000"
    )]
    pub url: Vec<String>,
    /// Where to publish (default: the first --url). With a fleet, any node.
    #[arg(long, global = true)]
    pub publish_url: Option<String>,
    /// The server's protocol.
    #[arg(long, global = true, value_enum, default_value = "seed001")]
    pub dialect: DialectKind,
    /// Subscriber connections to open (churn: connections held open during the churn).
    #[arg(short = 'n', long, global = true, default_value_t = 1000)]
    pub connections: usize,
    /// New connections per second while ramping up.
    #[arg(long, global = true, default_value_t = 1000.0)]
    pub ramp_rate: f64,
    /// Connections being opened/joined at once, at most.
    #[arg(long, global = true, default_value_t = 256)]
    pub max_pending: usize,
    /// Seconds allowed for TCP connect + WebSocket handshake.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub connect_timeout_secs: f64,
    /// Seconds allowed for the subscription confirmations after the handshake.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub subscribe_timeout_secs: f64,
    /// PID of the server process: report its RSS (VmRSS) and CPU % from /proc.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Runtime threads (1 = tokio current-thread runtime; more = multi-thread with one stats shard each).
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// Print only the JSON line on stdout (progress still goes to stderr unless --quiet).
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Room names are this prefix plus a number (`LT0`, `LT1`, …): valid seed 001
    /// tickers and nchan channel ids.
    #[arg(long, global = true, default_value = "LT")]
    pub room_prefix: String,
    /// A label copied into the report (e.g. the server's name in a comparison).
    #[arg(long, global = true)]
    pub label: Option<String>,
}

/// How publishes are paced (fanout, rooms, slow).
#[derive(Debug, Args, Clone)]
pub struct PublishArgs {
    /// Publishes per second (over all rooms), open loop.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds to publish at --rate.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Stepped rates instead of --rate, e.g. 50,100,200,400,800.
    #[arg(long, value_delimiter = ',')]
    pub steps: Option<Vec<f64>>,
    /// Seconds per step.
    #[arg(long, default_value_t = 10.0)]
    pub step_secs: f64,
    /// Seconds of silence between steps (lets a step's backlog drain).
    #[arg(long, default_value_t = 2.0)]
    pub settle_secs: f64,
    /// Publish as fast as the server answers for --secs (in-flight = --http-conns).
    #[arg(long, conflicts_with = "steps")]
    pub closed_loop: bool,
    /// Closed loop: stop after this many publishes.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_messages: u64,
    /// Keep-alive HTTP/1.1 connections for publishing.
    #[arg(long, default_value_t = 4)]
    pub http_conns: usize,
    /// Skip publishes that are this far behind schedule (bounds the run).
    #[arg(long, default_value_t = 5.0)]
    pub max_lag_secs: f64,
    /// After publishing, wait at most this long for outstanding deliveries.
    #[arg(long, default_value_t = 5.0)]
    pub drain_secs: f64,
}

/// The `trading` scenario (seed 004's server-timed price batches).
#[derive(Debug, Args, Clone)]
pub struct TradingArgs {
    /// Distinct symbol sets the N clients are spread over (client i takes
    /// set i mod K): 1 = every client on defaults (all symbols, nothing
    /// sent); K > 1 = K narrowed sets (9 singles, then pairs, … of --symbols).
    #[arg(long, default_value_t = 1)]
    pub sets: usize,
    /// Symbols the narrowed sets are drawn from (the server's simulator's by default).
    #[arg(long, value_delimiter = ',', default_value = crate::dialect::seed004::DEFAULT_SYMBOLS)]
    pub symbols: Vec<String>,
    /// Seconds measured (batches whose `timestamp` falls in the window).
    #[arg(long, default_value_t = 60.0)]
    pub secs: f64,
    /// The server's WEBSOCKET_PRICE_UPDATE_INTERVAL (seconds): gaps and
    /// intervals are judged against it.
    #[arg(long, default_value_t = 3.0)]
    pub interval_secs: f64,
    /// After the ramp, wait at most this long for every client's first batch of its set.
    #[arg(long, default_value_t = 15.0)]
    pub settle_secs: f64,
    /// After the window, wait this long for its last batches to arrive.
    #[arg(long, default_value_t = 3.0)]
    pub drain_secs: f64,
    /// Milliseconds between samples of the server's CPU time (per-thread schedstat, ns).
    #[arg(long, default_value_t = 10)]
    pub cpu_sample_ms: u64,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Connect N, subscribe, hold: server RSS per idle subscribed connection.
    Idle {
        /// Seconds to hold the connections open after the ramp.
        #[arg(long, default_value_t = 10.0)]
        hold_secs: f64,
    },
    /// N subscribers on one room; publish at a rate or in steps; per-step loss and latency.
    Fanout {
        /// Publishing.
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// N connections over R rooms; publishes round-robin over the rooms at a total rate.
    Rooms {
        /// Number of rooms (connection i joins room i mod R).
        #[arg(long, default_value_t = 10)]
        rooms: usize,
        /// Publishing.
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Some subscribers stop reading: are they closed (4008) or conflated, and do the others lose nothing?
    Slow {
        /// How many of the N subscribers stop reading.
        #[arg(long, default_value_t = 10)]
        slow: usize,
        /// Use seed 001's ordered `patterns` stream (overflow closes with 4008)
        /// instead of the conflating ticker stream.
        #[arg(long)]
        ordered: bool,
        /// Receive buffer of the slow sockets, bytes (small so the server backs up quickly).
        #[arg(long, default_value_t = 4096)]
        slow_rcvbuf: u32,
        /// Seconds a resumed slow subscriber may read what was queued for it.
        #[arg(long, default_value_t = 10.0)]
        slow_drain_secs: f64,
        /// Publishing (keep it under the server's heartbeat timeout: slow sockets do not answer pings).
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Connect/join/close cycles at a rate for a duration, beside N held connections.
    Churn {
        /// Cycles started per second.
        #[arg(long, default_value_t = 100.0)]
        churn_rate: f64,
        /// Seconds to churn.
        #[arg(long, default_value_t = 30.0)]
        secs: f64,
        /// Cycles in progress at once, at most (a cycle due while all are busy is skipped and counted).
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Rooms the churning connections join (round-robin).
        #[arg(long, default_value_t = 10)]
        rooms: usize,
    },
    /// Seed 004: N `/ws?client_id=` clients over K symbol sets receive the
    /// server's price batches; per-client batches, intervals, latency from
    /// each batch's `timestamp`, missed batches, server CPU per batch round.
    Trading(TradingArgs),
}

/// Checks `value` is within `[lo, hi]`.
fn within(name: &str, value: f64, lo: f64, hi: f64) -> anyhow::Result<()> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        anyhow::bail!("{name} must be between {lo} and {hi} (got {value})")
    }
}

impl PublishArgs {
    fn validate(&self) -> anyhow::Result<()> {
        within("--rate", self.rate, 0.1, 1_000_000.0)?;
        within("--secs", self.secs, 0.1, 3600.0)?;
        within("--step-secs", self.step_secs, 0.1, 3600.0)?;
        within("--settle-secs", self.settle_secs, 0.0, 600.0)?;
        within("--max-lag-secs", self.max_lag_secs, 0.0, 600.0)?;
        within("--drain-secs", self.drain_secs, 0.0, 600.0)?;
        within("--http-conns", self.http_conns as f64, 1.0, 256.0)?;
        within("--max-messages", self.max_messages as f64, 1.0, 1e9)?;
        if let Some(steps) = &self.steps {
            within("number of --steps", steps.len() as f64, 1.0, 64.0)?;
            for &r in steps {
                within("a --steps rate", r, 0.1, 1_000_000.0)?;
            }
            let total: f64 = steps.iter().map(|r| r * self.step_secs).sum();
            within("publishes in all steps", total, 1.0, 1e9)?;
        } else {
            within(
                "publishes (--rate × --secs)",
                self.rate * self.secs,
                1.0,
                1e9,
            )?;
        }
        Ok(())
    }
}

impl Cli {
    /// Rejects out-of-range values with a message naming the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        let c = &self.common;
        within("--connections", c.connections as f64, 0.0, 200_000.0)?;
        within("--ramp-rate", c.ramp_rate, 1.0, 1_000_000.0)?;
        within("--max-pending", c.max_pending as f64, 1.0, 100_000.0)?;
        within("--connect-timeout-secs", c.connect_timeout_secs, 0.1, 300.0)?;
        within(
            "--subscribe-timeout-secs",
            c.subscribe_timeout_secs,
            0.1,
            300.0,
        )?;
        within("--threads", c.threads as f64, 1.0, 64.0)?;
        within("--url count", c.url.len() as f64, 1.0, 64.0)?;
        if c.room_prefix.is_empty()
            || c.room_prefix.len() > 10
            || !c.room_prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            anyhow::bail!("--room-prefix must be 1 to 10 letters or digits");
        }
        match &self.scenario {
            Scenario::Idle { hold_secs } => within("--hold-secs", *hold_secs, 0.0, 86_400.0)?,
            Scenario::Fanout { publish } => publish.validate()?,
            Scenario::Rooms { rooms, publish } => {
                within("--rooms", *rooms as f64, 1.0, 100_000.0)?;
                publish.validate()?;
            }
            Scenario::Slow {
                slow,
                slow_rcvbuf,
                slow_drain_secs,
                publish,
                ..
            } => {
                if *slow > c.connections {
                    anyhow::bail!("--slow ({slow}) exceeds --connections ({})", c.connections);
                }
                within(
                    "--slow-rcvbuf",
                    *slow_rcvbuf as f64,
                    1024.0,
                    64.0 * 1024.0 * 1024.0,
                )?;
                within("--slow-drain-secs", *slow_drain_secs, 0.1, 600.0)?;
                publish.validate()?;
            }
            Scenario::Churn {
                churn_rate,
                secs,
                concurrency,
                rooms,
            } => {
                within("--churn-rate", *churn_rate, 0.1, 100_000.0)?;
                within("--secs", *secs, 0.1, 3600.0)?;
                within("--concurrency", *concurrency as f64, 1.0, 100_000.0)?;
                within("--rooms", *rooms as f64, 1.0, 100_000.0)?;
            }
            Scenario::Trading(t) => {
                within("--sets", t.sets as f64, 1.0, 100_000.0)?;
                within("--secs", t.secs, 1.0, 3600.0)?;
                within("--interval-secs", t.interval_secs, 0.01, 3600.0)?;
                within("--settle-secs", t.settle_secs, 0.0, 600.0)?;
                within("--drain-secs", t.drain_secs, 0.0, 600.0)?;
                within("--cpu-sample-ms", t.cpu_sample_ms as f64, 1.0, 10_000.0)?;
                within("number of --symbols", t.symbols.len() as f64, 1.0, 64.0)?;
                if t.symbols.iter().any(|s| {
                    s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) {
                    anyhow::bail!("--symbols must be tickers (letters, digits, '-')");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stepped_fanout_with_globals_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "fanout",
            "--steps",
            "50,100,200",
            "--step-secs",
            "5",
            "-n",
            "2000",
            "--url",
            "http://127.0.0.1:9000,http://127.0.0.2:9000",
            "--json",
        ])
        .unwrap();
        cli.validate().unwrap();
        assert_eq!(cli.common.connections, 2000);
        assert_eq!(cli.common.url.len(), 2);
        let Scenario::Fanout { publish } = &cli.scenario else {
            panic!("not fanout")
        };
        assert_eq!(publish.steps.as_deref(), Some(&[50.0, 100.0, 200.0][..]));
    }

    #[test]
    fn rejects_unbounded_or_nonsense_values() {
        let bad = [
            vec!["loadtest", "idle", "--hold-secs", "1e9"],
            vec!["loadtest", "fanout", "--secs", "0"],
            vec!["loadtest", "fanout", "--rate=-1"],
            vec!["loadtest", "slow", "-n", "5", "--slow", "6"],
            vec!["loadtest", "idle", "--room-prefix", "a:b"],
        ];
        for args in bad {
            let cli = Cli::try_parse_from(&args).unwrap();
            assert!(cli.validate().is_err(), "{args:?}");
        }
    }
}
