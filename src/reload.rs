//! Settings that live in files — the JWT verification keys
//! ([`crate::auth`]), the API key file ([`crate::access`]), the TLS
//! certificate — change without a restart: each is a [`Reloadable`], and
//! [`watch`] re-reads it when one of its files changes (modification time,
//! length or inode, polled) and at once on SIGHUP. One SIGHUP listener
//! ([`Hangups`]) is installed at start-up, before the node serves, so a
//! SIGHUP never kills a running node, and fans out to every watcher. A
//! reload that fails keeps what is in use (each [`Reloadable`] logs why).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a file looked like, to notice that it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    /// Its modification time.
    modified: Option<SystemTime>,
    /// Its length.
    len: u64,
    /// Its inode: an atomic rename (how secrets are usually rotated) may keep
    /// the time and the length.
    inode: u64,
}

impl FileStamp {
    /// The file at `path` as it is now; `None` when it cannot be stat'ed.
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

/// Something read from files that can be read again in place.
pub trait Reloadable: Send + Sync + 'static {
    /// What it is, for logs (`"JWT keys"`).
    fn what(&self) -> &'static str;
    /// The files it is read from.
    fn files(&self) -> Vec<PathBuf>;
    /// Reads the files again; on failure keeps what is in use and logs why.
    fn reload(&self);
}

/// The node's one SIGHUP listener; every [`watch`] subscribes to it.
#[derive(Debug, Clone)]
pub struct Hangups {
    /// Counts SIGHUPs; a change wakes every subscriber.
    count: watch::Receiver<u64>,
}

impl Hangups {
    /// Catches SIGHUP from now on (it no longer terminates the process) and
    /// spawns the task that counts them on `tracker`, until `shutdown`. Must
    /// run inside the runtime. Without a handler (the signal cannot be
    /// caught), files are only polled.
    pub fn install(tracker: &TaskTracker, shutdown: CancellationToken) -> Hangups {
        let (tx, count) = watch::channel(0u64);
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut signal) => {
                tracker.spawn(async move {
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            received = signal.recv() => {
                                if received.is_none() {
                                    return;
                                }
                                tracing::info!("SIGHUP: reloading keys and certificates");
                                tx.send_modify(|n| *n += 1);
                            }
                        }
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "no SIGHUP handler: key and certificate files are only polled");
            }
        }
        Hangups { count }
    }

    /// A listener that never hears a SIGHUP (tests).
    pub fn none() -> Hangups {
        let (_, count) = watch::channel(0u64);
        Hangups { count }
    }
}

/// Keeps `item` current until `shutdown`: re-reads it when one of its files
/// changes (checked every `poll`) and on every SIGHUP. Returns at once when
/// it has no files.
pub async fn watch(
    item: Arc<dyn Reloadable>,
    poll: Duration,
    hangups: Hangups,
    shutdown: CancellationToken,
) {
    let files = item.files();
    if files.is_empty() {
        return;
    }
    let stamps = |files: &[PathBuf]| files.iter().map(|f| FileStamp::of(f)).collect::<Vec<_>>();
    // Stamped before the first poll: the item was read at start.
    let mut seen = stamps(&files);
    // `None` once the listener is gone (or never was): polling only.
    let mut hangups = Some(hangups.count);
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let forced = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => false,
            changed = async {
                match hangups.as_mut() {
                    Some(h) => h.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed {
                    hangups = None;
                    continue;
                }
                true
            }
        };
        // Stamped before reading: a change while reading is seen next time,
        // and a broken file is not re-read until it changes again.
        let now = stamps(&files);
        if forced || now != seen {
            seen = now;
            tracing::debug!(what = item.what(), forced, "reloading");
            item.reload();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counted {
        path: PathBuf,
        reloads: AtomicUsize,
    }

    impl Reloadable for Counted {
        fn what(&self) -> &'static str {
            "test file"
        }
        fn files(&self) -> Vec<PathBuf> {
            vec![self.path.clone()]
        }
        fn reload(&self) {
            self.reloads.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_file_is_reloaded_once_and_an_unchanged_one_never() {
        let dir = std::env::temp_dir().join(format!("roomcast-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file");
        std::fs::write(&path, "one").unwrap();
        let item = Arc::new(Counted {
            path: path.clone(),
            reloads: AtomicUsize::new(0),
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(watch(
            Arc::clone(&item) as Arc<dyn Reloadable>,
            Duration::from_secs(1),
            Hangups::none(),
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(item.reloads.load(Ordering::SeqCst), 0, "unchanged");
        std::fs::write(&path, "two, longer").unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(item.reloads.load(Ordering::SeqCst), 1, "changed once");
        // Same length, so only the mtime or the inode can tell: replaced by rename.
        let next = path.with_extension("next");
        std::fs::write(&next, "two, LONGER").unwrap();
        std::fs::rename(&next, &path).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(item.reloads.load(Ordering::SeqCst), 2, "replaced by rename");
        shutdown.cancel();
        task.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_has_no_stamp() {
        assert_eq!(FileStamp::of(Path::new("/nonexistent/roomcast")), None);
    }
}
