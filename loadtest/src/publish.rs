//! The HTTP publisher: a schedule of publishes (a fixed rate, stepped rates,
//! or closed loop) sent over a few keep-alive HTTP/1.1 connections (hyper's
//! low-level client, one request in flight per connection).
//!
//! Open loop, without coordinated omission: publish *k* has a scheduled
//! instant fixed in advance (`t0 + k / rate` within its step), its body
//! carries that instant, and receivers measure latency from it. When the
//! server (or the publisher's connections) fall behind, later publishes go
//! out late but keep their scheduled time, so the backlog shows in the
//! latency instead of silently stretching the interval. A publish more than
//! `--max-lag-secs` behind schedule is not sent (counted `unsent`), which
//! bounds the run's length. Closed loop sends each publish as soon as its
//! connection's previous one was answered, stamping the send time; in-flight
//! requests are bounded by the number of connections.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::conn::Ctx;
use crate::scan::FieldScanner;
use crate::stats::{WindowSpan, histogram};
use crate::target::Target;

/// Bound on one HTTP request (connect, or send + full response).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How publishes are paced.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// One step per rate (publishes/s), each `step_secs` long, separated by
    /// `settle_secs` of silence so one step's backlog does not spill into the next.
    Steps {
        /// Rate of each step, publishes/s over all rooms.
        rates: Vec<f64>,
        /// Length of each step.
        step_secs: f64,
        /// Silence between steps.
        settle_secs: f64,
    },
    /// As fast as answered, for `secs`, at most `max` publishes.
    Closed {
        /// How long to publish.
        secs: f64,
        /// Upper bound on publishes (a bound on the run even if the server is very fast).
        max: u64,
    },
}

/// One window of the schedule (a step, or the whole closed-loop run).
#[derive(Debug, Clone)]
pub struct Window {
    /// Publishes/s (`None` in closed loop).
    pub rate: Option<f64>,
    /// Length of the window.
    pub secs: f64,
    /// Start, relative to the schedule's `t0`.
    pub offset: Duration,
    /// Index of the window's first publish.
    pub first: u64,
    /// Publishes scheduled in it (closed loop: the bound).
    pub count: u64,
    /// The window's scheduled times, for attributing deliveries.
    pub span: WindowSpan,
}

/// The whole plan: windows and when it starts.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Instant of scheduled offset 0.
    pub t0: Instant,
    /// The windows, in order.
    pub windows: Vec<Window>,
    /// Closed loop (no scheduled instants).
    pub closed_loop: bool,
    /// Publishes in all windows.
    pub total: u64,
}

impl Schedule {
    /// The plan for `mode`, starting at `t0`.
    pub fn new(mode: &Mode, clock: &Clock, t0: Instant) -> Self {
        let span = |offset: Duration, secs: f64| WindowSpan {
            start_us: clock.us_at(t0 + offset),
            end_us: clock.us_at(t0 + offset + Duration::from_secs_f64(secs)),
        };
        match mode {
            Mode::Steps {
                rates,
                step_secs,
                settle_secs,
            } => {
                let mut windows = Vec::new();
                let mut offset = Duration::ZERO;
                let mut first = 0;
                for &rate in rates {
                    let count = (rate * step_secs).round().max(1.0) as u64;
                    windows.push(Window {
                        rate: Some(rate),
                        secs: *step_secs,
                        offset,
                        first,
                        count,
                        span: span(offset, *step_secs),
                    });
                    first += count;
                    offset += Duration::from_secs_f64(step_secs + settle_secs);
                }
                Schedule {
                    t0,
                    windows,
                    closed_loop: false,
                    total: first,
                }
            }
            Mode::Closed { secs, max } => Schedule {
                t0,
                windows: vec![Window {
                    rate: None,
                    secs: *secs,
                    offset: Duration::ZERO,
                    first: 0,
                    count: *max,
                    span: span(Duration::ZERO, *secs),
                }],
                closed_loop: true,
                total: *max,
            },
        }
    }

    /// Window index and scheduled instant of open-loop publish `k` (< total).
    pub fn slot(&self, k: u64) -> (usize, Instant) {
        let w = self
            .windows
            .iter()
            .rposition(|w| k >= w.first)
            .expect("publish index within the schedule");
        let win = &self.windows[w];
        let rate = win.rate.unwrap_or(1.0);
        let at = self.t0 + win.offset + Duration::from_secs_f64((k - win.first) as f64 / rate);
        (w, at)
    }

    /// Start and end instants of window `w`.
    pub fn bounds(&self, w: usize) -> (Instant, Instant) {
        let win = &self.windows[w];
        let start = self.t0 + win.offset;
        (start, start + Duration::from_secs_f64(win.secs))
    }

    /// The windows' spans, for the receivers.
    pub fn spans(&self) -> Vec<WindowSpan> {
        self.windows.iter().map(|w| w.span).collect()
    }
}

/// What the publisher did in one window.
#[derive(Debug, Clone)]
pub struct PubStats {
    /// Publishes answered 2xx.
    pub ok: u64,
    /// Publishes that failed (error status, connection error, timeout).
    pub failed: u64,
    /// Publishes skipped for being more than `--max-lag-secs` behind schedule.
    pub unsent: u64,
    /// Σ over ok publishes of the fast subscribers of the publish's room.
    pub expected: u64,
    /// Σ of roomcast's reported `recipients` (a cross-check of `expected`;
    /// `None` for servers that do not report it).
    pub recipients: Option<u64>,
    /// Failures by reason.
    pub failures: BTreeMap<String, u64>,
    /// Publisher connections re-opened because the server had closed an idle
    /// keep-alive connection (not failures: nothing was lost).
    pub reconnects: u64,
    /// Send time of the first publish (closed loop: the window really starts then).
    pub first_sent: Option<Instant>,
    /// Send time of the last publish.
    pub last_sent: Option<Instant>,
    /// Latest scheduled time (µs) of an ok publish: a conflating slow consumer
    /// that ends on this value was kept current.
    pub last_ok_ts: Option<u64>,
    /// Send time − scheduled time of every sent publish, µs: the part of the
    /// delivery latency spent before the request left the generator (tokio's
    /// 1 ms timer granularity, busy publisher connections, a slow server).
    pub send_lag: Histogram<u64>,
}

impl Default for PubStats {
    fn default() -> Self {
        PubStats {
            ok: 0,
            failed: 0,
            unsent: 0,
            expected: 0,
            recipients: None,
            failures: BTreeMap::new(),
            reconnects: 0,
            first_sent: None,
            last_sent: None,
            last_ok_ts: None,
            send_lag: histogram(),
        }
    }
}

impl PubStats {
    fn fail(&mut self, reason: String) {
        self.failed += 1;
        *self.failures.entry(reason).or_default() += 1;
    }

    /// Adds another connection's stats for the same window.
    pub fn merge(&mut self, o: &PubStats) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.unsent += o.unsent;
        self.expected += o.expected;
        self.reconnects += o.reconnects;
        if let Some(r) = o.recipients {
            *self.recipients.get_or_insert(0) += r;
        }
        for (k, v) in &o.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        self.first_sent = match (self.first_sent, o.first_sent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_sent = self.last_sent.max(o.last_sent);
        self.last_ok_ts = self.last_ok_ts.max(o.last_ok_ts);
        self.send_lag
            .add(&o.send_lag)
            .expect("histograms with identical bounds merge");
    }
}

type Sender = SendRequest<Full<Bytes>>;

/// A new keep-alive HTTP/1.1 connection to `target`.
async fn open(target: &Target) -> Result<Sender, String> {
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(target.addr))
        .await
        .map_err(|_| "connect timeout".to_string())?
        .map_err(|e| format!("connect: {:?}", e.kind()))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on `sender`; the status and the whole response body.
async fn request(
    sender: &mut Sender,
    target: &Target,
    method: hyper::Method,
    path: &str,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", target.prefix))
        .header(HOST, &target.host_header)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// A one-off GET (e.g. `/metrics`) on its own connection.
pub async fn get(target: &Target, path: &str) -> Option<(u16, Bytes)> {
    let fut = async {
        let mut sender = open(target).await.ok()?;
        request(&mut sender, target, hyper::Method::GET, path, Bytes::new())
            .await
            .ok()
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .ok()
        .flatten()
}

/// The value of an unlabelled Prometheus sample `name` in an exposition text.
pub fn prom_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// What every publisher connection task shares.
struct Shared {
    /// Rooms, dialect, clock, subscriber counts.
    ctx: Arc<Ctx>,
    /// The plan.
    schedule: Arc<Schedule>,
    /// Server to publish to.
    target: Target,
    /// Next publish index to take (each task takes the next when free).
    next: AtomicU64,
    /// Publish path of each room, built once.
    paths: Vec<String>,
    /// Skip publishes this far behind schedule.
    max_lag: Duration,
    /// Releases open-loop publishes at their scheduled instants.
    pacer: Arc<Pacer>,
}

/// Releases publish indices at their scheduled instants from a dedicated OS
/// thread. tokio's timer has 1 ms granularity and rounds deadlines up, which
/// would add 0–1 ms (≈1 ms at p50) of lateness to every publish and so to every
/// measured latency; `std::thread::sleep` (nanosleep, 50 µs timer slack)
/// releases within ~0.1 ms. The thread sleeps between releases, so it costs
/// one wake-up per publish.
struct Pacer {
    /// Publishes `0..released` may be sent.
    released: AtomicU64,
    /// Wakes publisher tasks waiting for a release.
    notify: Notify,
    /// Set when the publisher is done (or gone), so the thread stops early.
    stop: AtomicBool,
}

impl Pacer {
    /// Waits until publish `k` is released.
    async fn wait_for(&self, k: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a release between the check and
            // the await still wakes this task.
            notified.as_mut().enable();
            if self.released.load(Ordering::Acquire) > k {
                return;
            }
            notified.await;
        }
    }

    /// The thread's loop: release every index whose instant has come.
    fn run(&self, schedule: &Schedule) {
        let mut k = 0;
        while k < schedule.total && !self.stop.load(Ordering::Relaxed) {
            let (_, at) = schedule.slot(k);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            // Release everything due by now in one go (after a late wake-up).
            let now = Instant::now();
            k += 1;
            while k < schedule.total && schedule.slot(k).1 <= now {
                k += 1;
            }
            self.released.store(k, Ordering::Release);
            self.notify.notify_waiters();
        }
    }
}

/// One publisher connection: takes the next publish, waits for its
/// scheduled instant, sends it, and repeats until the schedule is done.
async fn connection_task(sh: Arc<Shared>) -> Vec<PubStats> {
    let windows = sh.schedule.windows.len();
    let mut stats = vec![PubStats::default(); windows];
    let mut body = Vec::with_capacity(512);
    let recipients = FieldScanner::new(br#""recipients":"#);
    let closed_end = sh.schedule.t0 + Duration::from_secs_f64(sh.schedule.windows[0].secs);
    let rooms = sh.ctx.rooms.len() as u64;
    // Connect before t0 so the first publishes do not pay for a TCP handshake.
    let mut sender: Option<Sender> = open(&sh.target).await.ok();
    if sh.schedule.closed_loop {
        // Closed loop starts at t0 too, so its first publishes are inside the window.
        tokio::time::sleep_until(sh.schedule.t0.into()).await;
    }
    loop {
        let k = sh.next.fetch_add(1, Ordering::Relaxed);
        if k >= sh.schedule.total {
            break;
        }
        let (w, scheduled_us, lag) = if sh.schedule.closed_loop {
            let now = Instant::now();
            if now >= closed_end {
                break;
            }
            (0, sh.ctx.clock.us_at(now), Duration::ZERO)
        } else {
            let (w, at) = sh.schedule.slot(k);
            sh.pacer.wait_for(k).await;
            // Never early, whatever released it (the pacer never is; the
            // fallback without a pacer thread waits on tokio's timer here).
            if Instant::now() < at {
                tokio::time::sleep_until(at.into()).await;
            }
            let lag = Instant::now().saturating_duration_since(at);
            if lag > sh.max_lag {
                stats[w].unsent += 1;
                continue;
            }
            (w, sh.ctx.clock.us_at(at), lag)
        };
        let room = (k % rooms) as usize;
        body.clear();
        sh.ctx
            .dialect
            .write_publish_body(&sh.ctx.rooms[room], k, scheduled_us, &mut body);
        let st = &mut stats[w];
        // A keep-alive connection the server ended between requests (nginx
        // closes one after `keepalive_requests`) is not a failed publish:
        // nothing was sent on it; reconnect and send.
        if let Some(s) = sender.as_mut()
            && s.ready().await.is_err()
        {
            sender = None;
            st.reconnects += 1;
        }
        if sender.is_none() {
            match open(&sh.target).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    st.fail(e);
                    // Do not spin on a refusing server.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let s = sender.as_mut().expect("connected above");
        let now = Instant::now();
        st.first_sent.get_or_insert(now);
        st.last_sent = Some(now);
        st.send_lag.saturating_record(lag.as_micros() as u64);
        let sent = tokio::time::timeout(
            REQUEST_TIMEOUT,
            request(
                s,
                &sh.target,
                hyper::Method::POST,
                &sh.paths[room],
                Bytes::copy_from_slice(&body),
            ),
        )
        .await;
        match sent {
            Ok(Ok((status, resp))) if (200..300).contains(&status) => {
                st.ok += 1;
                st.last_ok_ts = st.last_ok_ts.max(Some(scheduled_us));
                let delivery_room = sh.ctx.dialect.delivery_room(room);
                st.expected += sh.ctx.room_subs[delivery_room].load(Ordering::Relaxed);
                if let Some(n) = recipients.scan(&resp) {
                    *st.recipients.get_or_insert(0) += n;
                }
            }
            Ok(Ok((status, _))) => st.fail(format!("http {status}")),
            Ok(Err(e)) => {
                st.fail(e);
                sender = None;
            }
            Err(_) => {
                st.fail("timeout".to_string());
                sender = None;
            }
        }
    }
    stats
}

/// Runs the schedule over `conns` connections to `target`; per-window stats.
pub async fn run(
    ctx: Arc<Ctx>,
    schedule: Arc<Schedule>,
    target: Target,
    conns: usize,
    max_lag: Duration,
) -> Vec<PubStats> {
    let paths = ctx
        .rooms
        .iter()
        .map(|r| ctx.dialect.publish_path(r))
        .collect();
    let pacer = Arc::new(Pacer {
        released: AtomicU64::new(0),
        notify: Notify::new(),
        stop: AtomicBool::new(false),
    });
    let pacer_thread = if schedule.closed_loop {
        None
    } else {
        let (p, s) = (Arc::clone(&pacer), Arc::clone(&schedule));
        std::thread::Builder::new()
            .name("loadtest-pacer".into())
            .spawn(move || p.run(&s))
            .ok()
    };
    if pacer_thread.is_none() {
        // Closed loop, or no thread could be started: release everything;
        // open-loop tasks then fall back to tokio's timer below.
        pacer.released.store(u64::MAX, Ordering::Release);
    }
    let shared = Arc::new(Shared {
        ctx,
        schedule,
        target,
        next: AtomicU64::new(0),
        paths,
        max_lag,
        pacer: Arc::clone(&pacer),
    });
    let tasks: Vec<_> = (0..conns.max(1))
        .map(|_| tokio::spawn(connection_task(Arc::clone(&shared))))
        .collect();
    let mut total = vec![PubStats::default(); shared.schedule.windows.len()];
    for task in tasks {
        if let Ok(stats) = task.await {
            for (t, s) in total.iter_mut().zip(&stats) {
                t.merge(s);
            }
        }
    }
    pacer.stop.store(true, Ordering::Relaxed);
    if let Some(t) = pacer_thread {
        // It has released everything (the tasks finished) or sees `stop` within one interval.
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_schedule_is_exact_and_windows_do_not_overlap() {
        let clock = Clock::new();
        let t0 = Instant::now();
        let s = Schedule::new(
            &Mode::Steps {
                rates: vec![50.0, 100.0],
                step_secs: 2.0,
                settle_secs: 1.0,
            },
            &clock,
            t0,
        );
        assert_eq!(s.total, 300);
        assert_eq!(s.windows[1].first, 100);
        let (w, at) = s.slot(99);
        assert_eq!(w, 0);
        assert_eq!(at - t0, Duration::from_secs_f64(99.0 / 50.0));
        let (w, at) = s.slot(100);
        assert_eq!(w, 1);
        assert_eq!(at - t0, Duration::from_secs(3));
        // Every scheduled time falls inside its own window's span.
        for k in 0..s.total {
            let (w, at) = s.slot(k);
            let us = clock.us_at(at);
            let span = s.windows[w].span;
            assert!(us >= span.start_us && us < span.end_us, "{k}");
        }
        assert!(s.windows[0].span.end_us <= s.windows[1].span.start_us);
    }

    #[test]
    fn reads_prometheus_samples() {
        let text = "# TYPE roomcast_frames_conflated_total counter\nroomcast_frames_conflated_total 42\nroomcast_frames_conflated_total_x 1\nroomcast_session_closes_total{reason=\"x\"} 3\n";
        assert_eq!(
            prom_value(text, "roomcast_frames_conflated_total"),
            Some(42.0)
        );
        assert_eq!(prom_value(text, "roomcast_session_closes_total"), None);
        assert_eq!(prom_value(text, "missing"), None);
    }
}
