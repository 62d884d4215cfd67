/**
 * Data channel declarations. Every peer of a room declares the same channels up front; each
 * becomes a pre-negotiated `RTCDataChannel` with a fixed id (channels sorted by name get ids 0,
 * 1, 2...), so no in-band channel negotiation is needed and both ends agree on the properties.
 */
import { SwitchboardError } from "./errors.js";

/** Delivery properties of one channel. */
export interface ChannelOptions {
  /** Deliver in the order sent (default `true`). */
  ordered?: boolean;
  /** Give up after this many retransmissions (`0`: never retransmit). Exclusive with `maxPacketLifeTime`. */
  maxRetransmits?: number;
  /** Give up retransmitting after this many milliseconds. Exclusive with `maxRetransmits`. */
  maxPacketLifeTime?: number;
}

/** Ordered and retransmitted until delivered (like TCP, but per channel). */
export const RELIABLE: Readonly<ChannelOptions> = Object.freeze({ ordered: true });

/** Unordered, never retransmitted: each message arrives once, late, or not at all. */
export const UNRELIABLE: Readonly<ChannelOptions> = Object.freeze({
  ordered: false,
  maxRetransmits: 0,
});

/** The channels a room has when the caller declares none: `reliable` and `unreliable`. */
export const DEFAULT_CHANNELS: Readonly<Record<string, ChannelOptions>> = Object.freeze({
  reliable: RELIABLE,
  unreliable: UNRELIABLE,
});

/** A channel as it is created on every connection. */
export interface ChannelSpec {
  /** Name the application uses. */
  readonly name: string;
  /** Fixed SCTP stream id (pre-negotiated). */
  readonly id: number;
  readonly ordered: boolean;
  readonly maxRetransmits?: number;
  readonly maxPacketLifeTime?: number;
  /** Ordered and fully reliable: large messages can be split into chunks and reassembled. */
  readonly chunked: boolean;
}

/** At most this many channels may be declared (SCTP allows more; games need a handful). */
export const MAX_CHANNELS = 64;

const CHANNEL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const U16 = 65535;

function limit(name: string, key: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U16) {
    throw new SwitchboardError(
      "invalid_options",
      `channel ${name}: ${key} must be an integer from 0 to ${U16}`,
    );
  }
  return value;
}

/** Validates channel declarations and assigns ids (sorted by name). */
export function channelSpecs(declared: Record<string, ChannelOptions>): ChannelSpec[] {
  if (typeof declared !== "object" || declared === null) {
    throw new SwitchboardError("invalid_options", "channels must be an object of name -> options");
  }
  const names = Object.keys(declared).sort();
  if (names.length === 0) throw new SwitchboardError("invalid_options", "declare at least one channel");
  if (names.length > MAX_CHANNELS) {
    throw new SwitchboardError("invalid_options", `at most ${MAX_CHANNELS} channels`);
  }
  return names.map((name, id) => {
    if (!CHANNEL_NAME.test(name)) {
      throw new SwitchboardError(
        "invalid_options",
        `channel names are 1-64 characters of A-Z a-z 0-9 _ . - (got ${JSON.stringify(name)})`,
      );
    }
    const options = declared[name] ?? {};
    if (typeof options !== "object" || options === null) {
      throw new SwitchboardError("invalid_options", `channel ${name}: options must be an object`);
    }
    const ordered = options.ordered ?? true;
    if (typeof ordered !== "boolean") {
      throw new SwitchboardError("invalid_options", `channel ${name}: ordered must be a boolean`);
    }
    const maxRetransmits = limit(name, "maxRetransmits", options.maxRetransmits);
    const maxPacketLifeTime = limit(name, "maxPacketLifeTime", options.maxPacketLifeTime);
    if (maxRetransmits !== undefined && maxPacketLifeTime !== undefined) {
      throw new SwitchboardError(
        "invalid_options",
        `channel ${name}: maxRetransmits and maxPacketLifeTime are exclusive`,
      );
    }
    const chunked = ordered && maxRetransmits === undefined && maxPacketLifeTime === undefined;
    const spec: ChannelSpec = { name, id, ordered, chunked };
    if (maxRetransmits !== undefined) return { ...spec, maxRetransmits };
    if (maxPacketLifeTime !== undefined) return { ...spec, maxPacketLifeTime };
    return spec;
  });
}

/** The `RTCDataChannelInit` for a channel: pre-negotiated, with its fixed id. */
export function dataChannelInit(spec: ChannelSpec): RTCDataChannelInit {
  const init: RTCDataChannelInit = { negotiated: true, id: spec.id, ordered: spec.ordered };
  if (spec.maxRetransmits !== undefined) init.maxRetransmits = spec.maxRetransmits;
  if (spec.maxPacketLifeTime !== undefined) init.maxPacketLifeTime = spec.maxPacketLifeTime;
  return init;
}

/**
 * A short text that is equal for two peers exactly when they declared the same channels; sent
 * with every offer so a mismatch is reported instead of silently misdelivering.
 */
export function channelsFingerprint(specs: readonly ChannelSpec[]): string {
  return specs
    .map((s) => `${s.id}:${s.name}:${s.ordered ? "o" : "u"}:${s.maxRetransmits ?? "-"}:${s.maxPacketLifeTime ?? "-"}`)
    .join(",");
}
