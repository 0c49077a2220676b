//! Every system call roomcast makes itself rather than through tokio or std,
//! in one place: the flusher's non-blocking socket sends (see
//! [`crate::delivery::flusher`] for why it bypasses tokio) and the
//! descriptor limit and table set up once at start-up. The crate denies
//! `unsafe` everywhere else.
#![allow(unsafe_code)]

use std::os::fd::RawFd;

use bytes::Bytes;

/// Most buffers one [`send_nonblocking`] call sends (the outbox's batch, so
/// one vectored write, is this long at most).
pub const MAX_IOVECS: usize = 32;

/// One non-blocking send of `batch` (at most [`MAX_IOVECS`] frames) on the
/// socket `fd`: `send` for one frame, `sendmsg` for several. Returns the
/// bytes the kernel took: 0 when it took none (`EAGAIN`) or failed.
/// `MSG_NOSIGNAL`: a reset peer is an error here, never a `SIGPIPE`. The
/// caller keeps `fd` open for the call (it borrows the socket).
pub fn send_nonblocking(fd: RawFd, batch: &[Bytes]) -> usize {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let sent = if let [frame] = batch {
        // SAFETY: the caller keeps `fd` open; the buffer is `frame`'s.
        unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), flags) }
    } else {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_IOVECS];
        for (v, frame) in iov.iter_mut().zip(batch) {
            v.iov_base = frame.as_ptr().cast_mut().cast();
            v.iov_len = frame.len();
        }
        // SAFETY: an all-zero `msghdr` is valid (no address, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = batch.len().min(MAX_IOVECS) as _;
        // SAFETY: the caller keeps `fd` open; every iovec points into a frame
        // of `batch`, alive for the call; the kernel only reads them.
        unsafe { libc::sendmsg(fd, &msg, flags) }
    };
    usize::try_from(sent).unwrap_or(0)
}

/// The open-file limit: `(soft, hard)`, or `None` if it cannot be read.
fn nofile_limit() -> Option<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0)
        .then_some((limit.rlim_cur, limit.rlim_max))
}

/// Raises the open-file soft limit to the hard limit: every WebSocket is a
/// descriptor. False when the limit could not be raised.
pub fn raise_fd_limit() -> bool {
    let Some((soft, hard)) = nofile_limit() else {
        return false;
    };
    if soft >= hard {
        return true;
    }
    let limit = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

/// Descriptors the server may hold: the open-file soft limit, at most what
/// `max_connections` needs (plus room for listeners, pools and files).
pub fn expected_fds(max_connections: usize) -> usize {
    let Some((soft, _)) = nofile_limit() else {
        return 0;
    };
    usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .min(max_connections.saturating_add(1024))
}

/// Grows the kernel's descriptor table to hold `fds` descriptors now; call it
/// while the process has one thread. The kernel grows it by doubling as
/// descriptors are opened, and in a multi-threaded process each growth waits
/// for an RCU grace period: measured here, the 256th and 512th accepted
/// connection of a fresh server each stalled the accept loop 10–23 ms. The
/// table never shrinks, so this costs about 8 bytes of kernel memory per
/// slot, once.
pub fn pregrow_fd_table(fds: usize) {
    let Ok(target) = libc::c_int::try_from(fds.saturating_sub(1)) else {
        return;
    };
    // SAFETY: plain descriptor calls on a descriptor we open and close here.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0 {
            return;
        }
        let high = libc::fcntl(null, libc::F_DUPFD_CLOEXEC, target);
        if high >= 0 {
            libc::close(high);
        }
        libc::close(null);
    }
}
