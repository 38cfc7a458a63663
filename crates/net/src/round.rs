//! A worker's round: its connections that have input run their batches,
//! then all of them write (ARCHITECTURE "Rounds"). The round ends when no
//! connection task of the worker is left that was woken and has not run
//! since: each connection task runs inside `Counted`, whose waker counts
//! it in its worker's `WOKEN` until it is polled.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

thread_local! {
    /// The connections of this worker whose replies wait for the end of
    /// the round.
    static WAITING: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
    /// How many of this worker's connection tasks were woken and have not
    /// run since (other threads wake them too, hence the atomic).
    static WOKEN: Cell<Option<&'static AtomicIsize>> = const { Cell::new(None) };
    /// Set by `end_of_round` when its task must wait; `Counted` then
    /// queues the task's own waker, which counts nothing: a connection
    /// released only to write brings no input to the round.
    static QUEUE_ME: Cell<bool> = const { Cell::new(false) };
    /// How many more times the round may be found not over before the
    /// connections waiting are released anyway; 0 exactly while none waits.
    static PATIENCE: Cell<u32> = const { Cell::new(0) };
}

/// The most connection task polls (each of which asks whether the round
/// is over) a round's first waiting connection waits for: connections
/// that keep getting input and send no replies cannot hold the others'
/// replies back for longer.
const ROUND_MAX_POLLS: u32 = 128;

/// This worker's `WOKEN` counter. Leaked, one per thread: a waker may
/// outlive the worker's thread-locals.
fn woken() -> &'static AtomicIsize {
    WOKEN.with(|w| match w.get() {
        Some(c) => c,
        None => {
            let c: &'static AtomicIsize = Box::leak(Box::new(AtomicIsize::new(0)));
            w.set(Some(c));
            c
        }
    })
}

/// Wakes the connections waiting for the end of the round if it is over:
/// no connection task of this worker is left to run, or the round's
/// `PATIENCE` ran out.
#[inline]
fn release_if_over(woken: &AtomicIsize) -> bool {
    let patience = PATIENCE.get();
    if woken.load(Ordering::Acquire) > 0 && patience != 1 {
        if patience > 1 {
            PATIENCE.set(patience - 1);
        }
        return false;
    }
    if patience > 0 {
        release_waiting();
    }
    true
}

/// Wakes every waiting connection.
#[inline(never)]
fn release_waiting() {
    PATIENCE.set(0);
    // The thread-local may be gone when the worker itself ends.
    let _ = WAITING.try_with(|w| {
        let mut w = w.borrow_mut();
        while let Some(t) = w.pop() {
            t.wake();
        }
    });
}

/// Completes when the round is over: at once when no other connection
/// task of this worker is waiting to run, else when the last of them has
/// (or `ROUND_MAX_POLLS` polls later).
/// Only for a task run by `Counted`, which queues it.
pub(crate) fn end_of_round() -> impl Future<Output = ()> {
    let mut queued = false;
    std::future::poll_fn(move |_| {
        if queued || release_if_over(woken()) {
            return Poll::Ready(());
        }
        queued = true;
        QUEUE_ME.set(true);
        Poll::Pending
    })
}

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const GONE: u8 = 2;

/// The waker a connection task is polled with: it counts the task in its
/// worker's `woken` on the first wake since the task last ran.
struct Woken {
    task: Waker,
    state: AtomicU8,
    woken: &'static AtomicIsize,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self
            .state
            .compare_exchange(IDLE, QUEUED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.woken.fetch_add(1, Ordering::AcqRel);
        }
        self.task.wake_by_ref();
    }
}

impl Woken {
    /// The task runs (or is gone): it no longer counts as woken. Another
    /// thread's wake may count it between its state change and its count
    /// (`woken` dips below zero for that instant, read as zero).
    fn settle(&self, to: u8) {
        let was = if to == IDLE && self.state.load(Ordering::Relaxed) == IDLE {
            IDLE
        } else {
            self.state.swap(to, Ordering::AcqRel)
        };
        if was == QUEUED {
            self.woken.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A connection task, polled with a `Woken` waker (see the module).
pub(crate) struct Counted<F> {
    fut: Pin<Box<F>>,
    waker: Option<(Arc<Woken>, Waker)>,
}

impl<F: Future<Output = ()>> Counted<F> {
    pub(crate) fn new(fut: F) -> Self {
        Counted {
            fut: Box::pin(fut),
            waker: None,
        }
    }
}

impl<F: Future<Output = ()>> Future for Counted<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // A task's waker stays the same; a new one retires the old.
        if let Some((old, _)) = this.waker.take_if(|(w, _)| !w.task.will_wake(cx.waker())) {
            old.settle(GONE);
        }
        let (w, waker) = this.waker.get_or_insert_with(|| {
            let w = Arc::new(Woken {
                task: cx.waker().clone(),
                state: AtomicU8::new(IDLE),
                woken: woken(),
            });
            (w.clone(), Waker::from(w))
        });
        w.settle(IDLE);
        let done = this.fut.as_mut().poll(&mut Context::from_waker(waker));
        if QUEUE_ME.replace(false) {
            WAITING.with(|q| q.borrow_mut().push(w.task.clone()));
            if PATIENCE.get() == 0 {
                PATIENCE.set(ROUND_MAX_POLLS);
            }
        }
        release_if_over(w.woken);
        done
    }
}

impl<F> Drop for Counted<F> {
    fn drop(&mut self) {
        if let Some((w, _)) = self.waker.take() {
            w.settle(GONE);
            release_if_over(w.woken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{end_of_round, Counted};
    use std::cell::RefCell;
    use std::rc::Rc;
    use tokio::sync::oneshot;

    fn run(f: impl std::future::Future<Output = ()>) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
            panic!("cannot build a runtime");
        };
        tokio::task::LocalSet::new().block_on(&rt, f);
    }

    type Log = Rc<RefCell<Vec<String>>>;

    /// Connection tasks named `names`, each of which waits for its input,
    /// logs its batch, then waits for the end of the round and logs its
    /// write. Their input arrives together once all of them wait for it.
    async fn round(names: &[&'static str], log: &Log) -> Vec<tokio::task::JoinHandle<()>> {
        let mut inputs = Vec::new();
        let mut tasks = Vec::new();
        for &name in names {
            let (tx, rx) = oneshot::channel::<()>();
            let log = log.clone();
            inputs.push(tx);
            tasks.push(tokio::task::spawn_local(Counted::new(async move {
                let _ = rx.await;
                log.borrow_mut().push(format!("{name} runs"));
                end_of_round().await;
                log.borrow_mut().push(format!("{name} writes"));
            })));
        }
        tokio::task::yield_now().await;
        for tx in inputs {
            let _ = tx.send(());
        }
        tasks
    }

    #[test]
    fn replies_wait_for_every_connection_woken_in_the_round() {
        run(async {
            let log = Log::default();
            for t in round(&["a", "b"], &log).await {
                let _ = t.await;
            }
            assert_eq!(*log.borrow(), ["a runs", "b runs", "b writes", "a writes"]);
        });
    }

    #[test]
    fn a_lone_connection_writes_at_once_and_a_dropped_one_ends_the_round() {
        run(async {
            let log = Log::default();
            for t in round(&["a"], &log).await {
                let _ = t.await;
            }
            assert_eq!(*log.borrow(), ["a runs", "a writes"]);

            log.borrow_mut().clear();
            let tasks = round(&["b", "c"], &log).await;
            // c is woken, then dropped before it runs: b's round still ends.
            tasks[1].abort();
            for t in tasks {
                let _ = t.await;
            }
            assert_eq!(*log.borrow(), ["b runs", "b writes"]);
        });
    }

    #[test]
    fn a_connection_that_keeps_running_holds_a_round_back_only_so_long() {
        run(async {
            let log = Log::default();
            // Woken again each time it runs, through its counted waker: the
            // round never runs out of woken connections on its own.
            let busy = {
                let log = log.clone();
                tokio::task::spawn_local(Counted::new(async move {
                    for _ in 0..10 * super::ROUND_MAX_POLLS {
                        let mut woke = false;
                        std::future::poll_fn(|cx| {
                            if woke {
                                return std::task::Poll::Ready(());
                            }
                            woke = true;
                            cx.waker().wake_by_ref();
                            std::task::Poll::Pending
                        })
                        .await;
                    }
                    log.borrow_mut().push("busy done".to_string());
                }))
            };
            for t in round(&["a"], &log).await {
                let _ = t.await;
            }
            let _ = busy.await;
            assert_eq!(*log.borrow(), ["a runs", "a writes", "busy done"]);
        });
    }
}
