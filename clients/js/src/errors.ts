/**
 * Errors raised or emitted by the client. `code` is stable and meant for programs; `message` is
 * for humans.
 *
 * Codes the client itself produces:
 * - `invalid_options`: a bad argument (channel declaration, URL, room name...).
 * - `join_timeout`: no `welcome` from the server within `joinTimeoutMs`.
 * - `connection_closed`: the signaling socket closed (before `welcome`, or later).
 * - `connection_failed`: the socket could not be opened.
 * - `bad_server_message`: the server sent something that is not a Switchboard message.
 * - `server_timeout`: the server stopped answering heartbeats.
 * - `room_closed`: the room was closed (by `close()` or because the server went away).
 * - `unknown_peer`: no such peer in the room.
 * - `peer_not_connected`: the peer is known but its data channels are not open (yet or anymore).
 * - `unknown_channel`: the channel was not declared when joining.
 * - `message_too_big`: larger than the channel can carry (see `maxMessageBytes`).
 * - `send_queue_full`: more than `maxBufferedBytes` waiting to be sent to one peer on one channel.
 * - `bad_frame`: a peer sent a data channel frame that does not follow the framing rules.
 * - `bad_signal`: a peer sent a signaling payload that is not a valid offer/answer/candidate.
 * - `channel_mismatch`: a peer declared different channels; the two cannot talk.
 * - `webrtc_error`: the browser refused an offer, answer or candidate.
 * - `invalid_sdp`: an SDP that is not a data-channel-only offer or answer (compact codes).
 * - `invalid_code`: a compact code that is truncated, corrupted, oversized or of another
 *   version; `detail` says which (`truncated`, `checksum`, `oversized`, `unsupported_version`,
 *   `invalid`).
 *
 * Codes the server sends (`room_full`, `name_taken`, `rate_limited`, ...) are passed through
 * unchanged; see docs/protocol.md.
 */
export class SwitchboardError extends Error {
  /** Stable machine-readable code. */
  readonly code: string;
  /** A finer stable reason, when the code has several (e.g. `checksum` for `invalid_code`). */
  readonly detail: string | undefined;

  /** Creates an error with a stable `code`, a human-readable `message` and an optional `detail`. */
  constructor(code: string, message: string, detail?: string) {
    super(message);
    this.name = "SwitchboardError";
    this.code = code;
    this.detail = detail;
  }
}

/** The error a WebSocket close stands for: the server's code when it gave one (4000-4999, 1001, 1009). */
export function closeError(event: { code: number; reason: string }): SwitchboardError {
  // 1012 (`draining`) and 1013 (`unavailable`): cluster mode, connect again.
  if (event.code >= 4000 || [1001, 1009, 1012, 1013].includes(event.code)) {
    if (event.reason) return new SwitchboardError(event.reason, `the server closed the connection: ${event.reason} (${event.code})`);
  }
  return new SwitchboardError("connection_closed", `the connection closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
}
