//! What a WebSocket error from axum/tungstenite means for the connection: a protocol violation
//! to answer (1002, 1007), a full write buffer (a slow reader), a frame over the size limit, or
//! (anything else, a FIN or reset without a close frame included) a connection that is gone.

/// The RFC 6455 close code for a client that broke the WebSocket protocol: 1002 (a protocol
/// error: reserved bits, an unmasked frame, an oversized or fragmented control frame...) or 1007
/// (a text frame that is not UTF-8).
pub fn violation(error: &axum::Error) -> Option<(u16, &'static str)> {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(inner) = source {
        match inner.downcast_ref::<tungstenite::Error>() {
            // A TCP close with no close frame is a lost connection, not a violation: the
            // peer may resume.
            Some(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => return None,
            Some(tungstenite::Error::Protocol(_)) => return Some((1002, "protocol_error")),
            Some(tungstenite::Error::Utf8(_)) => return Some((1007, "invalid_utf8")),
            _ => {}
        }
        source = inner.source();
    }
    None
}

/// Whether a write failed because the socket holds `max_write_buffer_bytes` unsent.
pub fn is_write_buffer_full(error: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(tungstenite::Error::WriteBufferFull(_)) =
            inner.downcast_ref::<tungstenite::Error>()
        {
            return true;
        }
        source = inner.source();
    }
    false
}

/// Whether a frame or message was larger than `max_message_bytes`.
pub fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(tungstenite::Error::Capacity(_)) = inner.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = inner.source();
    }
    false
}
