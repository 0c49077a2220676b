//! A real PostgreSQL for the integration tests: [`PgInstance`] is a private,
//! throw-away cluster (`initdb` into a fresh temporary directory, then the
//! `postgres` server on a free port on 127.0.0.1 only), [`shared_url`] is one
//! server shared by the whole test binary (or the server `DATABASE_URL` names),
//! and [`TestDb`] is a fresh, uniquely named database on that shared server,
//! dropped again when the value is dropped.
//!
//! Servers run as the `postgres` system user when the tests run as root
//! (postgres refuses to run as root) and always die with the test process
//! (`PR_SET_PDEATHSIG`). Every wait is a poll bounded by a deadline; readiness
//! is a real connection that answers `SELECT 1`.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

use super::process::{RunAs, free_port, prepare, signal, spawn, wait_bounded};

/// Bound on a server becoming ready to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a server exiting after a shutdown signal.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a single connection attempt or admin statement.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval between readiness / exit polls.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often [`PgInstance::start`] picks another port when the free one it
/// picked was taken by someone else before the server could bind it.
const PORT_ATTEMPTS: u32 = 5;

/// A private PostgreSQL cluster in its own temporary directory, listening on
/// 127.0.0.1 only. Dropping it kills the server and removes the directory.
pub struct PgInstance {
    /// Temporary root: holds `data/` (the cluster), `server.log` and the
    /// Unix socket.
    dir: PathBuf,
    port: u16,
    server: Option<Child>,
    run_as: Option<RunAs>,
    /// Extra `-c name=value` server settings (TLS).
    settings: Vec<String>,
}

impl PgInstance {
    /// Creates a fresh cluster and starts its server; returns once it accepts
    /// connections. Blocking (a couple of seconds); may be called from inside a
    /// tokio runtime. Panics when the PostgreSQL binaries are not installed.
    pub fn start() -> PgInstance {
        let mut instance = Self::create();
        instance.launch_on_free_port();
        instance
    }

    /// [`start`](Self::start) with TLS on (`ssl=on`), serving the PEM
    /// certificate chain `chain` and key `key`; plain connections are still
    /// accepted.
    pub fn start_tls(chain: &str, key: &str) -> PgInstance {
        use std::os::unix::fs::PermissionsExt;
        let mut instance = Self::create();
        let cert_path = instance.dir.join("server.crt");
        let key_path = instance.dir.join("server.key");
        fs::write(&cert_path, chain).expect("writing server.crt");
        fs::write(&key_path, key).expect("writing server.key");
        // postgres refuses a key others can read, or that it does not own.
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).expect("chmod key");
        if let Some(user) = instance.run_as {
            for path in [&cert_path, &key_path] {
                std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                    .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
            }
        }
        instance.settings = vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", cert_path.display()),
            format!("ssl_key_file={}", key_path.display()),
        ];
        instance.launch_on_free_port();
        instance
    }

    /// [`start`](Self::start) with password authentication for every role
    /// but `postgres` (still trusted, so [`url`](Self::url) keeps working
    /// for administration): a role made with `CREATE ROLE … PASSWORD` must
    /// give it (`scram-sha-256`).
    pub fn start_with_passwords() -> PgInstance {
        let mut instance = Self::create();
        let hba = instance.data_dir().join("pg_hba.conf");
        // Rewrites the file in place: it keeps its owner (the server's user).
        fs::write(
            &hba,
            "local all all trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", hba.display()));
        instance.launch_on_free_port();
        instance
    }

    /// A fresh cluster (initdb), not started.
    fn create() -> PgInstance {
        let bins = binaries();
        let run_as = run_as();
        let dir = make_temp_dir();
        // Owns `dir` from here on, so a panic below still removes it.
        let instance = PgInstance {
            dir,
            port: 0,
            server: None,
            run_as,
            settings: Vec::new(),
        };
        if let Some(user) = run_as {
            std::os::unix::fs::chown(&instance.dir, Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", instance.dir.display()));
        }

        let mut initdb = Command::new(&bins.initdb);
        initdb
            .arg("-D")
            .arg(instance.data_dir())
            .args(["--no-sync", "-A", "trust", "-U", "postgres"])
            // C locale: no dependency on which locales the machine has.
            .args(["--encoding=UTF8", "--locale=C"])
            .current_dir(&instance.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        prepare(&mut initdb, run_as);
        let out = spawn(initdb)
            .and_then(Child::wait_with_output)
            .unwrap_or_else(|e| panic!("running {}: {e}", bins.initdb.display()));
        if !out.status.success() {
            panic!(
                "{} failed ({}):\n{}{}",
                bins.initdb.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        instance
    }

    /// Starts the server on a free port, retrying when another process took
    /// the port first.
    fn launch_on_free_port(&mut self) {
        for attempt in 1..=PORT_ATTEMPTS {
            self.port = free_port();
            match self.launch() {
                Ok(()) => return,
                Err(e) if e.port_taken && attempt < PORT_ATTEMPTS => continue,
                Err(e) => panic!("starting postgres on port {}: {}", self.port, e.message),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// [`url`](Self::url) with database `db` instead of `postgres`.
    pub fn url_for(&self, db: &str) -> String {
        database_url(&self.url(), db)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (kept across [`stop`](Self::stop) /
    /// [`restart`](Self::restart), removed on drop).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Process id of the running postmaster, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Fast shutdown (SIGINT to the postmaster: sessions are terminated,
    /// a checkpoint is written) and waits for the server to exit. The data
    /// directory is kept. No-op when already stopped.
    pub fn stop(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        signal(&server, libc::SIGINT);
        if wait_bounded(&mut server, SHUTDOWN_TIMEOUT).is_none() {
            let _ = server.kill();
            let _ = server.wait();
            panic!(
                "postgres did not exit within {SHUTDOWN_TIMEOUT:?} of SIGINT; killed it. Log:\n{}",
                self.log_tail(0)
            );
        }
    }

    /// Starts the server again on the same port and data directory (stopping
    /// it first if it is running); returns once it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.launch() {
            panic!("restarting postgres on port {}: {}", self.port, e.message);
        }
    }

    /// Spawns the server on `self.port` and waits until it accepts
    /// connections. On failure the server is not running.
    fn launch(&mut self) -> Result<(), LaunchError> {
        assert!(self.server.is_none(), "postgres is already running");
        let log_path = self.dir.join("server.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log_path.display()));
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log.try_clone().expect("duplicating the log file handle");

        let mut cmd = Command::new(&binaries().postgres);
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-c", "listen_addresses=127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        prepare(&mut cmd, self.run_as);
        let server = spawn(cmd)
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binaries().postgres.display()));
        self.server = Some(server);

        match self.wait_until_ready() {
            Ok(()) => Ok(()),
            Err(reason) => {
                if let Some(mut server) = self.server.take() {
                    let _ = server.kill();
                    let _ = server.wait();
                }
                let log = self.log_tail(log_start);
                Err(LaunchError {
                    port_taken: log.contains("Address already in use"),
                    message: format!("{reason}. Server log:\n{log}"),
                })
            }
        }
    }

    /// Polls a real connection (`SELECT 1`) until it succeeds, the server
    /// exits, or [`READY_TIMEOUT`] passes.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let url = self.url();
        let server = self.server.as_mut().expect("server spawned");
        let deadline = Instant::now() + READY_TIMEOUT;
        on_fresh_runtime(move || async move {
            loop {
                match server.try_wait() {
                    Ok(Some(status)) => {
                        return Err(format!("postgres exited during startup ({status})"));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("waiting for postgres: {e}")),
                }
                let last_error = match tokio::time::timeout(CONNECT_TIMEOUT, probe(&url)).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("connection attempt took over {CONNECT_TIMEOUT:?}"),
                };
                if Instant::now() >= deadline {
                    return Err(format!(
                        "postgres did not accept connections within {READY_TIMEOUT:?}; last error: {last_error}"
                    ));
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        })
    }

    /// The server log from byte `from` on (lossy, for error messages).
    fn log_tail(&self, from: u64) -> String {
        let mut text = Vec::new();
        if let Ok(mut f) = File::open(self.dir.join("server.log")) {
            let _ = f.seek(SeekFrom::Start(from));
            let _ = f.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl Drop for PgInstance {
    /// Immediate shutdown (SIGQUIT) and wait, SIGKILL if that takes too long;
    /// then removes the temporary directory. Never panics.
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            signal(&server, libc::SIGQUIT);
            if wait_bounded(&mut server, SHUTDOWN_TIMEOUT).is_none() {
                eprintln!("postgres (pid {}) ignored SIGQUIT; killing it", server.id());
                let _ = server.kill();
                let _ = server.wait();
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            eprintln!("removing {}: {e}", self.dir.display());
        }
    }
}

struct LaunchError {
    port_taken: bool,
    message: String,
}

// ---------------------------------------------------------------------------
// The server shared by a whole test binary.

/// The instance behind [`shared_url`], taken and dropped at process exit.
static SHARED_INSTANCE: Mutex<Option<PgInstance>> = Mutex::new(None);

/// URL of a server for tests that only need *a* database: `DATABASE_URL` when
/// set, otherwise one [`PgInstance`] started on first use and shared by the
/// whole test binary (killed and removed at process exit). Blocking on first
/// use.
pub fn shared_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = std::env::var_os("DATABASE_URL").filter(|v| !v.is_empty()) {
            return url.into_string().expect("DATABASE_URL is not valid UTF-8");
        }
        let instance = PgInstance::start();
        let url = instance.url();
        *SHARED_INSTANCE
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(instance);
        // Statics are never dropped: stop the server when the binary exits.
        // SAFETY: registers a plain `extern "C" fn` that never unwinds.
        if unsafe { libc::atexit(stop_shared_instance) } != 0 {
            eprintln!(
                "atexit failed; the shared postgres dies with the process but leaves its directory"
            );
        }
        url
    })
    .clone()
}

extern "C" fn stop_shared_instance() {
    let _ = std::panic::catch_unwind(|| {
        let instance = match SHARED_INSTANCE.try_lock() {
            Ok(mut guard) => guard.take(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        };
        drop(instance);
    });
}

// ---------------------------------------------------------------------------
// A fresh database per test.

/// A freshly created, uniquely named database on the [`shared_url`] server;
/// dropping it drops the database (terminating any sessions still on it).
pub struct TestDb {
    /// Connection URL of this database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    /// Creates `roomcast_test_<pid>_<counter>_<random>` on the shared server
    /// (starting that server first if needed).
    pub async fn create() -> TestDb {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin_url = tokio::task::spawn_blocking(shared_url)
            .await
            .expect("starting the shared postgres");
        let name = format!(
            "roomcast_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let admin = connect(&admin_url).await;
        let sql = format!("CREATE DATABASE {}", quote_ident(&name));
        match tokio::time::timeout(CONNECT_TIMEOUT, admin.batch_execute(&sql)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{sql}: {e}"),
            Err(_) => panic!("{sql}: no answer within {CONNECT_TIMEOUT:?}"),
        }
        TestDb {
            url: database_url(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new connection to this database (its connection task is spawned on
    /// the current runtime).
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        let admin_url = &self.admin_url;
        // Drop is sync and may run on a runtime thread: use a fresh thread
        // with its own runtime and wait for it.
        let result = on_fresh_runtime(|| async {
            let (client, connection) =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio_postgres::connect(admin_url, NoTls))
                    .await
                    .map_err(|_| format!("connecting took over {CONNECT_TIMEOUT:?}"))?
                    .map_err(|e| format!("connecting: {e}"))?;
            let connection = tokio::spawn(connection);
            tokio::time::timeout(CONNECT_TIMEOUT, client.batch_execute(&sql))
                .await
                .map_err(|_| format!("no answer within {CONNECT_TIMEOUT:?}"))?
                .map_err(|e| e.to_string())?;
            drop(client);
            let _ = connection.await;
            Ok::<(), String>(())
        });
        if let Err(e) = result {
            if std::thread::panicking() {
                eprintln!("{sql}: {e}");
            } else {
                panic!("{sql}: {e}");
            }
        }
    }
}

/// Connects to `url` (bounded by a timeout) and spawns the connection task on
/// the current runtime; panics on failure.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio_postgres::connect(url, NoTls)).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => panic!("connecting to {url}: {e}"),
            Err(_) => panic!("connecting to {url}: no answer within {CONNECT_TIMEOUT:?}"),
        };
    tokio::spawn(async move {
        // Ends when the client is dropped or the server closes the session.
        let _ = connection.await;
    });
    client
}

/// `base` (a `postgres://` URL or a `key=value` connection string) with its
/// database replaced by `db`; the URL's query string is kept (minus any
/// `dbname` parameter, which would override the path).
pub fn database_url(base: &str, db: &str) -> String {
    let Some(scheme_end) = base.find("://") else {
        // key=value form: a later key overrides an earlier one.
        let escaped = db.replace('\\', "\\\\").replace('\'', "\\'");
        return format!("{base} dbname='{escaped}'");
    };
    let (prefix, rest) = base.split_at(scheme_end + 3);
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_len);
    let query = match after.split_once('?') {
        Some((_, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("dbname="))
                .collect();
            if kept.is_empty() {
                String::new()
            } else {
                format!("?{}", kept.join("&"))
            }
        }
        None => String::new(),
    };
    format!("{prefix}{authority}/{}{query}", percent_encode(db))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `name` as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

// ---------------------------------------------------------------------------
// Processes, binaries, users.

struct PgBinaries {
    initdb: PathBuf,
    postgres: PathBuf,
}

/// `initdb` and `postgres` from `PATH`, else from the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn binaries() -> &'static PgBinaries {
    static BINARIES: OnceLock<PgBinaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        find_binaries().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, postgres) not found on PATH or in \
                 /usr/lib/postgresql/*/bin. Install them with `apt-get install postgresql` \
                 (tests/run.sh does this), or set DATABASE_URL to use an existing server \
                 for the tests that only need a database."
            )
        })
    })
}

fn find_binaries() -> Option<PgBinaries> {
    if let (Some(initdb), Some(postgres)) = (find_on_path("initdb"), find_on_path("postgres")) {
        return Some(PgBinaries { initdb, postgres });
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version: Vec<u32> = name
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            (is_executable(&bin.join("initdb")) && is_executable(&bin.join("postgres")))
                .then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))?;
    Some(PgBinaries {
        initdb: newest.1.join("initdb"),
        postgres: newest.1.join("postgres"),
    })
}

fn find_on_path(name: impl AsRef<OsStr>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name.as_ref()))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `Some(postgres user)` when running as root, `None` otherwise.
fn run_as() -> Option<RunAs> {
    static RUN_AS: OnceLock<Option<RunAs>> = OnceLock::new();
    *RUN_AS.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        // SAFETY: the name is NUL-terminated; the result is read at once,
        // inside the OnceLock initialiser, so no other getpwnam call races it.
        let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        assert!(
            !pw.is_null(),
            "running as root, and postgres refuses to: a `postgres` system user is needed \
             (Debian's `apt-get install postgresql` creates it)"
        );
        // SAFETY: non-null pointer from getpwnam.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        Some(RunAs { uid, gid })
    })
}

/// A new, uniquely named directory under the system temporary directory.
fn make_temp_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "roomcast-pg-{}-{}-{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    ));
    DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Runs `f()`'s future to completion on a new thread with its own
/// current-thread runtime (usable from sync code inside another runtime).
fn on_fresh_runtime<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
    T: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building a tokio runtime")
                    .block_on(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Connects, runs `SELECT 1`, disconnects.
async fn probe(url: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let connection = tokio::spawn(connection);
    client.simple_query("SELECT 1").await?;
    drop(client);
    let _ = connection.await;
    Ok(())
}
