//! A peer's reliable frames waiting for room in its transport's send buffer (pure).
//!
//! str0m accepts a data channel write only while its SCTP send buffer has room for the whole
//! frame (128 KiB by default); a refused write is not sent at all. Every reliable frame therefore
//! goes through an `Outbox`: written at once while the transport takes it, queued in order when it
//! does not, and written as acknowledgements free the transport's buffer. The queue is bounded in
//! bytes; a peer that lets it overflow is closed (`send_queue_full`) rather than losing data.

use std::collections::VecDeque;

/// Frames queued in order, and their total size.
#[derive(Debug, Default)]
pub struct Outbox {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
}

/// A message did not fit in the queue's byte limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl Outbox {
    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues the frames of one message behind what is waiting, all or none: refused when the
    /// queue would then hold more than `limit` bytes.
    pub fn push(&mut self, frames: Vec<Vec<u8>>, limit: usize) -> Result<(), Overflow> {
        let size: usize = frames.iter().map(Vec::len).sum();
        if self.bytes.saturating_add(size) > limit {
            return Err(Overflow);
        }
        self.bytes += size;
        self.frames.extend(frames);
        Ok(())
    }

    /// Queues one frame whatever the limit (a goodbye: it is the last one).
    pub fn push_last(&mut self, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Hands queued frames, oldest first, to `write` until it refuses one (`Ok(false)`: no room
    /// yet; that frame stays first) or fails. Returns how many were written.
    pub fn flush<E>(
        &mut self,
        mut write: impl FnMut(&[u8]) -> Result<bool, E>,
    ) -> Result<usize, E> {
        let mut written = 0;
        while let Some(frame) = self.frames.front() {
            if !write(frame)? {
                break;
            }
            self.bytes -= frame.len();
            self.frames.pop_front();
            written += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(sizes: &[usize]) -> Vec<Vec<u8>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8; n])
            .collect()
    }

    #[test]
    fn flushes_in_order_while_the_transport_takes_frames() {
        let mut outbox = Outbox::default();
        outbox.push(frames(&[3, 4, 5]), 100).expect("fits");
        assert_eq!(outbox.bytes(), 12);
        // The transport has room for 8 bytes: the first two frames go, the third waits.
        let mut room = 8;
        let mut sent = Vec::new();
        let written = outbox.flush(|frame| -> Result<bool, ()> {
            if frame.len() > room {
                return Ok(false);
            }
            room -= frame.len();
            sent.push(frame.to_vec());
            Ok(true)
        });
        assert_eq!(written, Ok(2));
        assert_eq!(sent, frames(&[3, 4]));
        assert_eq!(outbox.bytes(), 5);
        // Room again: the rest goes, in order.
        let mut rest = Vec::new();
        let written = outbox.flush(|frame| -> Result<bool, ()> {
            rest.push(frame[0]);
            Ok(true)
        });
        assert_eq!(written, Ok(1));
        assert_eq!(rest, vec![2]);
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn a_message_is_queued_whole_or_not_at_all() {
        let mut outbox = Outbox::default();
        outbox.push(frames(&[60]), 100).expect("fits");
        // 60 + 40 = 100: exactly at the limit is fine.
        outbox
            .push(frames(&[20, 20]), 100)
            .expect("fits at the limit");
        // One byte over: refused, and nothing of it is queued.
        assert_eq!(outbox.push(frames(&[1]), 100), Err(Overflow));
        assert_eq!(outbox.bytes(), 100);
        // A goodbye goes in whatever the limit.
        outbox.push_last(vec![5, b'x']);
        assert_eq!(outbox.bytes(), 102);
    }

    #[test]
    fn a_failed_write_keeps_the_frame_and_reports_the_error() {
        let mut outbox = Outbox::default();
        outbox.push(frames(&[1, 2]), 100).expect("fits");
        let result = outbox.flush(|_| Err("association gone"));
        assert_eq!(result, Err("association gone"));
        assert_eq!(outbox.bytes(), 3);
    }
}
