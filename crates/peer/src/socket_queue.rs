//! The frames waiting for one WebSocket fallback peer, bounded in bytes (not in frames, so a
//! queue of large chunks costs what its limit says). The network loop pushes; the peer's socket
//! task takes them off and writes them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It would take the queue over its byte limit.
    Full,
    /// The socket task is gone.
    Closed,
}

/// The network loop's end.
#[derive(Debug)]
pub(crate) struct FrameSender {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

/// The socket task's end: dropping every sender ends the stream once it is drained.
#[derive(Debug)]
pub(crate) struct FrameReceiver {
    frames: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

/// A new queue for one WebSocket peer.
pub(crate) fn frame_queue() -> (FrameSender, FrameReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        FrameSender {
            frames: tx,
            queued: queued.clone(),
        },
        FrameReceiver { frames: rx, queued },
    )
}

impl FrameSender {
    /// Queues a frame unless the queue would then hold more than `limit` bytes.
    pub(crate) fn push(&self, frame: Vec<u8>, limit: usize) -> Result<(), Refused> {
        let size = frame.len();
        if self.queued.load(Ordering::Relaxed).saturating_add(size) > limit {
            return Err(Refused::Full);
        }
        self.queued.fetch_add(size, Ordering::Relaxed);
        self.frames.send(frame).map_err(|_| {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            Refused::Closed
        })
    }

    /// Bytes queued and not yet taken by the socket task.
    pub(crate) fn bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl FrameReceiver {
    /// The next frame, or `None` once every sender is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<Vec<u8>> {
        let frame = self.frames.recv().await?;
        self.queued.fetch_sub(frame.len(), Ordering::Relaxed);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_bytes_and_drained_in_order() {
        let (sender, mut receiver) = frame_queue();
        sender.push(vec![1; 60], 100).expect("fits");
        sender.push(vec![2; 40], 100).expect("fits at the limit");
        assert_eq!(sender.push(vec![3], 100), Err(Refused::Full));
        assert_eq!(sender.bytes(), 100);
        assert_eq!(receiver.recv().await, Some(vec![1; 60]));
        assert_eq!(sender.bytes(), 40);
        sender.push(vec![3], 100).expect("room again");
        drop(sender);
        assert_eq!(receiver.recv().await, Some(vec![2; 40]));
        assert_eq!(receiver.recv().await, Some(vec![3]));
        assert_eq!(receiver.recv().await, None);
    }

    #[tokio::test]
    async fn a_gone_receiver_refuses_and_frees_the_bytes() {
        let (sender, receiver) = frame_queue();
        drop(receiver);
        assert_eq!(sender.push(vec![1; 10], 100), Err(Refused::Closed));
        assert_eq!(sender.bytes(), 0);
    }
}
