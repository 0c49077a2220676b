//! Child processes of the integration tests (PostgreSQL, Redis, roomcast
//! nodes): spawned so they die with the test process, optionally as another
//! user, and waited for with bounds.

use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Interval between exit polls.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The identity initdb and postgres run as.
#[derive(Clone, Copy)]
pub struct RunAs {
    /// User id.
    pub uid: libc::uid_t,
    /// Group id.
    pub gid: libc::gid_t,
}

/// Makes `cmd` drop to `run_as` (if any) and die with this process.
pub fn prepare(cmd: &mut Command, run_as: Option<RunAs>) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(RunAs { uid, gid }) = run_as
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(io::Error::last_os_error());
            }
            // After the uid change: changing credentials resets the death signal.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the death signal was armed.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Spawns `cmd` from one long-lived thread. `PR_SET_PDEATHSIG` fires when the
/// *thread* that forked the child exits, and test threads exit after every
/// test, which would kill the shared server; this thread lives as long as the
/// process.
pub fn spawn(cmd: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::SyncSender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("test-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting the spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    spawner
        .send((cmd, reply_tx))
        .expect("the spawner thread is gone");
    reply_rx
        .recv()
        .expect("the spawner thread dropped a request")
}

pub fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: plain kill(2) on our own, not yet reaped, child.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL_INTERVAL),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}
