//! Drives a session's reader and writer in one task, polling each only when
//! its own waker fired. `tokio::select!` polls every branch on every wake-up,
//! so each fan-out delivery (a writer wake-up) would also re-poll the reader's
//! socket readiness: one cold cache line per subscriber per message, visible
//! in profiles of large fan-outs. Here each branch gets its own waker, which
//! marks the branch and wakes the task; a poll touches only marked branches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

const FIRST: u8 = 1;
const SECOND: u8 = 2;

/// Which future finished first, with its output.
#[derive(Debug)]
pub enum Finished<A, B> {
    /// The first future.
    First(A),
    /// The second future.
    Second(B),
}

/// Shared between the race and its two branch wakers.
#[derive(Debug, Default)]
struct Woken {
    /// Branches whose waker fired since their last poll.
    branches: AtomicU8,
    /// The task's waker, woken by either branch.
    task: Mutex<Option<Waker>>,
}

/// One branch's waker: marks the branch, wakes the task.
#[derive(Debug)]
struct Branch {
    /// State shared with the race.
    woken: Arc<Woken>,
    /// This branch's bit.
    bit: u8,
}

impl Wake for Branch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.branches.fetch_or(self.bit, Ordering::AcqRel);
        if let Some(task) = self.woken.task.lock().as_ref() {
            task.wake_by_ref();
        }
    }
}

/// Polls `first` and `second` until one finishes; see the module docs.
pub async fn race<A: Future, B: Future>(
    first: Pin<&mut A>,
    second: Pin<&mut B>,
) -> Finished<A::Output, B::Output> {
    let woken = Arc::new(Woken {
        branches: AtomicU8::new(FIRST | SECOND),
        task: Mutex::new(None),
    });
    let waker_of = |bit| {
        Waker::from(Arc::new(Branch {
            woken: Arc::clone(&woken),
            bit,
        }))
    };
    let (first_waker, second_waker) = (waker_of(FIRST), waker_of(SECOND));
    let (mut first, mut second) = (first, second);
    std::future::poll_fn(move |cx| {
        {
            let mut task = woken.task.lock();
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let due = woken.branches.swap(0, Ordering::AcqRel);
        if due & FIRST != 0
            && let Poll::Ready(out) = first.as_mut().poll(&mut Context::from_waker(&first_waker))
        {
            return Poll::Ready(Finished::First(out));
        }
        if due & SECOND != 0
            && let Poll::Ready(out) = second
                .as_mut()
                .poll(&mut Context::from_waker(&second_waker))
        {
            return Poll::Ready(Finished::Second(out));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; finishes when its channel yields.
    async fn counted(polls: &AtomicUsize, mut rx: tokio::sync::mpsc::Receiver<u32>) -> u32 {
        std::future::poll_fn(|cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            match rx.poll_recv(cx) {
                Poll::Ready(v) => Poll::Ready(v.unwrap_or(0)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    #[tokio::test]
    async fn only_the_woken_branch_is_polled() {
        let (a_polls, b_polls) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (_a_tx, a_rx) = tokio::sync::mpsc::channel(1);
        let (b_tx, b_rx) = tokio::sync::mpsc::channel(1);
        let a = pin!(counted(&a_polls, a_rx));
        let b = pin!(counted(&b_polls, b_rx));
        let driver = tokio::spawn(async move {
            for v in [1, 2, 7] {
                tokio::task::yield_now().await;
                b_tx.send(v).await.unwrap();
            }
        });
        // B finishes on its first value; A was never woken after its first poll.
        assert!(matches!(race(a, b).await, Finished::Second(1)));
        assert_eq!(a_polls.load(Ordering::Relaxed), 1);
        assert!(b_polls.load(Ordering::Relaxed) >= 2);
        driver.abort();
    }

    #[tokio::test]
    async fn first_branch_wins_when_it_finishes() {
        let polls = AtomicUsize::new(0);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(3).await.unwrap();
        let a = pin!(counted(&polls, rx));
        let b = pin!(std::future::pending::<()>());
        assert!(matches!(race(a, b).await, Finished::First(3)));
    }
}
