/**
 * MessagePack helpers for structured game messages: `room.send(peer, "unreliable", pack(state))`
 * on one side, `unpack(event.data)` on the other.
 */
import { decode, encode } from "@msgpack/msgpack";
import { SwitchboardError } from "./errors.js";

/** Encodes a value as MessagePack bytes. */
export function pack(value: unknown): Uint8Array {
  return encode(value);
}

/** Decodes MessagePack bytes; throws `SwitchboardError("bad_frame")` when they are not. */
export function unpack(bytes: Uint8Array | ArrayBuffer | string): unknown {
  if (typeof bytes === "string") {
    throw new SwitchboardError("bad_frame", "expected binary MessagePack data, got text");
  }
  try {
    return decode(bytes);
  } catch (error) {
    throw new SwitchboardError("bad_frame", `not MessagePack: ${(error as Error).message}`);
  }
}
