//! A connection's bounded send queue: tokio's unbounded channel and a counter for the bound.
//!
//! tokio's bounded channel keeps its bound in a semaphore that takes a lock on every receive;
//! every relayed frame crosses this queue, so the bound is one atomic counter here instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::Message;
use tokio::sync::mpsc::{self, error::TryRecvError};

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
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        QueueSender {
            tx,
            queued: queued.clone(),
            capacity,
        },
        QueueReceiver { rx, queued },
    )
}

/// The end that queues frames (the relay's side).
#[derive(Debug)]
pub struct QueueSender {
    tx: mpsc::UnboundedSender<Message>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl QueueSender {
    /// Queues a frame unless `capacity` frames wait already or the connection is gone.
    pub fn try_send(&self, frame: Message) -> Result<(), Refused> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.send(frame).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            Refused::Closed
        })
    }
}

/// The end that takes frames to write (the connection's side).
#[derive(Debug)]
pub struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<Message>,
    queued: Arc<AtomicUsize>,
}

impl QueueReceiver {
    /// The next frame; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Message> {
        let frame = self.rx.recv().await;
        self.took(frame.is_some());
        frame
    }

    /// The next frame if one waits.
    pub fn try_recv(&mut self) -> Result<Message, TryRecvError> {
        let frame = self.rx.try_recv();
        self.took(frame.is_ok());
        frame
    }

    fn took(&self, one: bool) {
        if one {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
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
        for n in [1, 2, 4] {
            assert_eq!(rx.try_recv().ok(), Some(frame(n)));
        }
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn refuses_as_closed_once_the_connection_is_gone() {
        let (tx, rx) = send_queue(2);
        drop(rx);
        assert_eq!(tx.try_send(frame(0)), Err(Refused::Closed));
        // A refused frame does not count against the bound.
        assert_eq!(tx.queued.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn ends_when_every_sender_is_gone() {
        let (tx, mut rx) = send_queue(2);
        tx.try_send(frame(7)).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(frame(7)));
        assert_eq!(rx.recv().await, None);
    }
}
