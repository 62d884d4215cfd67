//! A connection's bounded send queue: frames behind a short lock, and one waker.
//!
//! Every relayed frame crosses this queue, and every connection has one, idle or not. tokio's
//! channels allocate a block of 32 slots when created (1.3 KiB per idle connection) and take
//! a lock (bounded) or two atomic updates per frame; here an idle queue holds no buffer, a
//! sender wakes the writer only when the queue was empty, and the writer takes a batch of
//! frames under one lock.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use axum::extract::ws::Message;
use futures_util::task::AtomicWaker;

/// A queue that grew past this many frames gives its buffer back once it is empty again.
const KEPT_CAPACITY: usize = 64;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `capacity` frames wait already: the reader is too slow.
    Full,
    /// The connection is gone.
    Closed,
}

/// A queue for at most `capacity` frames at once.
pub fn send_queue(capacity: usize) -> (QueueSender, QueueReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            frames: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        writer: AtomicWaker::new(),
    });
    (
        QueueSender {
            shared: shared.clone(),
            capacity,
        },
        QueueReceiver { shared },
    )
}

struct Shared {
    state: Mutex<State>,
    /// The connection task, when it waits for frames.
    writer: AtomicWaker,
}

impl Shared {
    /// The state; a poisoned lock (a panic elsewhere) is recovered, as the state is a plain
    /// queue and two flags, consistent between any two statements.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct State {
    frames: VecDeque<Message>,
    sender_gone: bool,
    receiver_gone: bool,
}

/// The end that queues frames (the relay's side; one per connection).
pub struct QueueSender {
    shared: Arc<Shared>,
    capacity: usize,
}

impl QueueSender {
    /// Queues a frame unless `capacity` frames wait already or the connection is gone.
    pub fn try_send(&self, frame: Message) -> Result<(), Refused> {
        let mut state = self.shared.state();
        if state.receiver_gone {
            return Err(Refused::Closed);
        }
        if state.frames.len() >= self.capacity {
            return Err(Refused::Full);
        }
        state.frames.push_back(frame);
        let first = state.frames.len() == 1;
        drop(state);
        // A writer with frames waiting was woken already and takes this one with them.
        if first {
            self.shared.writer.wake();
        }
        Ok(())
    }
}

impl Drop for QueueSender {
    fn drop(&mut self) {
        self.shared.state().sender_gone = true;
        self.shared.writer.wake();
    }
}

/// The end that takes frames to write (the connection's side).
pub struct QueueReceiver {
    shared: Arc<Shared>,
}

impl QueueReceiver {
    /// The next frame; `None` once the sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Message> {
        poll_fn(|cx| {
            // Registered before looking, so a frame queued in between wakes this task.
            self.shared.writer.register(cx.waker());
            let mut state = self.shared.state();
            match take_one(&mut state) {
                Some(frame) => Poll::Ready(Some(frame)),
                None if state.sender_gone => Poll::Ready(None),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The next frame if one waits.
    pub fn try_recv(&mut self) -> Option<Message> {
        take_one(&mut self.shared.state())
    }

    /// Moves up to `most` waiting frames to `batch`, under one lock.
    pub fn take(&mut self, batch: &mut Vec<Message>, most: usize) {
        let mut state = self.shared.state();
        let n = most.min(state.frames.len());
        batch.extend(state.frames.drain(..n));
        give_back_buffer(&mut state);
    }
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.receiver_gone = true;
        // Nobody will write these.
        state.frames = VecDeque::new();
    }
}

fn take_one(state: &mut State) -> Option<Message> {
    let frame = state.frames.pop_front();
    give_back_buffer(state);
    frame
}

/// An empty queue that once held a burst frees its buffer: idle connections hold none.
fn give_back_buffer(state: &mut State) {
    if state.frames.is_empty() && state.frames.capacity() > KEPT_CAPACITY {
        state.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Message {
        Message::Binary(vec![n].into())
    }

    #[tokio::test]
    async fn holds_exactly_capacity_frames_then_refuses_until_one_is_taken() {
        let (tx, mut rx) = send_queue(3);
        for n in 0..3 {
            assert_eq!(tx.try_send(frame(n)), Ok(()));
        }
        assert_eq!(tx.try_send(frame(3)), Err(Refused::Full));
        assert_eq!(rx.recv().await, Some(frame(0)));
        assert_eq!(tx.try_send(frame(4)), Ok(()));
        assert_eq!(tx.try_send(frame(5)), Err(Refused::Full));
        let mut batch = Vec::new();
        rx.take(&mut batch, 2);
        assert_eq!(batch, [frame(1), frame(2)]);
        assert_eq!(rx.try_recv(), Some(frame(4)));
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn refuses_as_closed_once_the_connection_is_gone() {
        let (tx, rx) = send_queue(2);
        tx.try_send(frame(0)).unwrap();
        drop(rx);
        assert_eq!(tx.try_send(frame(1)), Err(Refused::Closed));
        assert!(
            tx.shared.state().frames.is_empty(),
            "dropped with the receiver"
        );
    }

    #[tokio::test]
    async fn ends_when_the_sender_is_gone_and_the_queue_is_empty() {
        let (tx, mut rx) = send_queue(2);
        tx.try_send(frame(7)).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(frame(7)));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_a_frame_from_another_task() {
        let (tx, mut rx) = send_queue(8);
        let writer = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(frame) = rx.recv().await {
                got.push(frame);
            }
            got
        });
        for n in 0..5 {
            tokio::task::yield_now().await;
            tx.try_send(frame(n)).unwrap();
        }
        drop(tx);
        let got = writer.await.unwrap();
        assert_eq!(got, (0..5).map(frame).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_emptied_queue_gives_its_burst_buffer_back() {
        let (tx, mut rx) = send_queue(1_000);
        for n in 0..200 {
            tx.try_send(frame(n as u8)).unwrap();
        }
        assert!(tx.shared.state().frames.capacity() >= 200);
        let mut batch = Vec::new();
        rx.take(&mut batch, 1_000);
        assert_eq!(batch.len(), 200);
        assert_eq!(tx.shared.state().frames.capacity(), 0);
        // A small queue keeps its buffer: no churn for a steady trickle.
        tx.try_send(frame(0)).unwrap();
        assert_eq!(rx.try_recv(), Some(frame(0)));
        assert!(tx.shared.state().frames.capacity() > 0);
    }
}
