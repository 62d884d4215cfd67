//! How a connection's socket is closed: a refusal in the client's wire, or the error, a normal
//! close for a detach, the frames queued before it, and the wait for the client's reply.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use switchboard_protocol::ProtocolError;

use crate::hub::CloseReason;
use crate::wire::{encode_closing, Wire};
use switchboard_ws::{self as ws, WebSocket};

/// How long a closing handshake may take before the socket is simply dropped.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers a refused connect in the wire's own words, then closes.
pub(super) async fn refuse_on(mut socket: WebSocket, wire: Wire, error: ProtocolError) {
    close_with_error(&mut socket, wire, error).await;
}

/// Closes a connection that never joined: the error in the wire's words, then the close.
pub(super) async fn close_with_error(socket: &mut WebSocket, wire: Wire, error: ProtocolError) {
    close(socket, wire, Vec::new(), CloseReason::Error(error)).await;
}

/// Closes the socket: first the `pending` frames, then for an error an `error` message and a
/// close frame carrying the error's close code and name; for a detach, a normal close (1000, `detached`). Then waits (briefly) for
/// the peer's close reply: dropping the socket with unread input would make the kernel send a
/// reset, and the peer could lose the close frame and its reason.
pub(super) async fn close(
    socket: &mut WebSocket,
    wire: Wire,
    pending: Vec<Message>,
    reason: CloseReason,
) {
    let (message, close_frame) = match reason {
        CloseReason::Error(error) => {
            let code = error.code;
            tracing::debug!(code = code.as_str(), reason = %error.message, "closing connection");
            let frame = CloseFrame {
                code: code.close_code().unwrap_or(1000),
                reason: code.as_str().into(),
            };
            (encode_closing(&error, wire), frame)
        }
        CloseReason::Detached => (
            None,
            CloseFrame {
                code: 1000,
                reason: "detached".into(),
            },
        ),
        CloseReason::Violation { code, reason } => (
            None,
            CloseFrame {
                code,
                reason: reason.into(),
            },
        ),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        for frame in pending {
            socket.feed(frame).await?;
        }
        if let Some(frame) = message {
            socket.feed(frame).await?;
        }
        socket.send(Message::Close(Some(close_frame))).await?;
        while let Some(Ok(frame)) = socket.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
        socket.discard_input().await;
        Ok::<(), ws::Error>(())
    })
    .await;
}
