/**
 * Framing of application messages on a data channel (docs/protocol.md, "Data channel framing").
 * Pure: bytes in, frames out, and back.
 *
 * Every frame starts with one kind byte:
 * - `0` a whole binary message, `1` a whole text (UTF-8) message;
 * - `2` / `3` the first chunk of a binary / text message, followed by the total length of the
 *   message (u32, big endian) and the first bytes;
 * - `4` a following chunk;
 * - `5` goodbye: the sender closes the connection; the rest is the reason (UTF-8).
 *
 * Chunks are only used on ordered, fully reliable channels, where they arrive in order.
 */
import { SwitchboardError } from "./errors.js";

/** Kind byte values. */
export const FrameKind = Object.freeze({
  Binary: 0,
  Text: 1,
  FirstBinaryChunk: 2,
  FirstTextChunk: 3,
  Chunk: 4,
  Goodbye: 5,
} as const);

/** The other side said goodbye (frame kind 5), with its reason. */
export class Goodbye {
  /** Creates a goodbye with the other side's reason. */
  constructor(readonly reason: string) {}
}

/** A goodbye frame with a reason. */
export function goodbyeFrame(reason: string): Uint8Array {
  const text = encoder.encode(reason.slice(0, 256));
  const frame = new Uint8Array(text.byteLength + 1);
  frame[0] = FrameKind.Goodbye;
  frame.set(text, 1);
  return frame;
}

/** Application payloads: text, or bytes. */
export type Payload = string | ArrayBuffer | ArrayBufferView;

/** A decoded application message. */
export type Received = string | Uint8Array;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const FIRST_HEADER = 5;

function bytesOf(payload: Payload): { bytes: Uint8Array; text: boolean } {
  if (typeof payload === "string") return { bytes: encoder.encode(payload), text: true };
  if (payload instanceof ArrayBuffer) return { bytes: new Uint8Array(payload), text: false };
  if (ArrayBuffer.isView(payload)) {
    return {
      bytes: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
      text: false,
    };
  }
  throw new SwitchboardError("invalid_options", "data must be a string, an ArrayBuffer or a typed array");
}

/**
 * Splits a message into frames of at most `frameBytes` bytes each. With `chunked` false the
 * message must fit in one frame, else `message_too_big` is thrown. `maxMessageBytes` bounds the
 * message itself either way.
 */
export function encodeFrames(
  payload: Payload,
  options: { frameBytes: number; chunked: boolean; maxMessageBytes: number },
): Uint8Array[] {
  const { bytes, text } = bytesOf(payload);
  if (bytes.byteLength > options.maxMessageBytes) {
    throw new SwitchboardError(
      "message_too_big",
      `message of ${bytes.byteLength} bytes is over maxMessageBytes (${options.maxMessageBytes})`,
    );
  }
  if (bytes.byteLength + 1 <= options.frameBytes) {
    const frame = new Uint8Array(bytes.byteLength + 1);
    frame[0] = text ? FrameKind.Text : FrameKind.Binary;
    frame.set(bytes, 1);
    return [frame];
  }
  if (!options.chunked) {
    throw new SwitchboardError(
      "message_too_big",
      `message of ${bytes.byteLength} bytes does not fit in one ${options.frameBytes}-byte frame on an unordered or partially reliable channel`,
    );
  }
  const frames: Uint8Array[] = [];
  const firstBody = options.frameBytes - FIRST_HEADER;
  const first = new Uint8Array(options.frameBytes);
  first[0] = text ? FrameKind.FirstTextChunk : FrameKind.FirstBinaryChunk;
  new DataView(first.buffer).setUint32(1, bytes.byteLength);
  first.set(bytes.subarray(0, firstBody), FIRST_HEADER);
  frames.push(first);
  const body = options.frameBytes - 1;
  for (let at = firstBody; at < bytes.byteLength; at += body) {
    const part = bytes.subarray(at, Math.min(at + body, bytes.byteLength));
    const frame = new Uint8Array(part.byteLength + 1);
    frame[0] = FrameKind.Chunk;
    frame.set(part, 1);
    frames.push(frame);
  }
  return frames;
}

interface Pending {
  text: boolean;
  buffer: Uint8Array;
  filled: number;
}

/**
 * Turns received frames back into messages. A frame that breaks the rules throws `bad_frame`
 * and discards any message being reassembled; the next well-formed message is accepted again.
 */
export class Reassembler {
  private pending: Pending | null = null;

  /** `maxMessageBytes` bounds what a peer can make us buffer. */
  constructor(private readonly maxMessageBytes: number) {}

  /** Feeds one frame; returns a whole message (or a goodbye), or `null` while a chunked message is incomplete. */
  push(frame: Uint8Array): Received | Goodbye | null {
    if (frame.byteLength === 0) return this.fail("empty frame");
    const kind = frame[0];
    if (kind !== FrameKind.Chunk && this.pending !== null) {
      return this.fail("a new message started before the previous chunked one was complete");
    }
    switch (kind) {
      case FrameKind.Binary:
        return frame.subarray(1);
      case FrameKind.Text:
        return this.text(frame.subarray(1));
      case FrameKind.Goodbye:
        return new Goodbye(new TextDecoder().decode(frame.subarray(1)));
      case FrameKind.FirstBinaryChunk:
      case FrameKind.FirstTextChunk: {
        if (frame.byteLength < FIRST_HEADER) return this.fail("truncated first chunk");
        const total = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1);
        if (total > this.maxMessageBytes) {
          return this.fail(`announced message of ${total} bytes is over ${this.maxMessageBytes}`);
        }
        this.pending = { text: kind === FrameKind.FirstTextChunk, buffer: new Uint8Array(total), filled: 0 };
        return this.append(frame.subarray(FIRST_HEADER));
      }
      case FrameKind.Chunk:
        if (this.pending === null) return this.fail("a chunk with no message started");
        return this.append(frame.subarray(1));
      default:
        return this.fail(`unknown frame kind ${kind}`);
    }
  }

  private append(part: Uint8Array): Received | null {
    const pending = this.pending as Pending;
    if (pending.filled + part.byteLength > pending.buffer.byteLength) {
      return this.fail("chunks longer than the announced length");
    }
    pending.buffer.set(part, pending.filled);
    pending.filled += part.byteLength;
    if (pending.filled < pending.buffer.byteLength) return null;
    this.pending = null;
    return pending.text ? this.text(pending.buffer) : pending.buffer;
  }

  private text(bytes: Uint8Array): string {
    try {
      return decoder.decode(bytes);
    } catch {
      return this.fail("text message is not valid UTF-8");
    }
  }

  private fail(why: string): never {
    this.pending = null;
    throw new SwitchboardError("bad_frame", why);
  }
}
