/** `joinRoom` options: declarations, defaults, validation, and the query parameters they become. */
import { type ChannelOptions, DEFAULT_CHANNELS } from "./channels.js";
import { SwitchboardError } from "./errors.js";
import type { Encoding, JoinParams } from "./signaling.js";

/** Options of every WebRTC connection, in rooms, pairings and to a server peer. */
export interface ConnectionOptions {
  /** Channels both ends declare (default: `reliable` and `unreliable`). */
  channels?: Record<string, ChannelOptions>;
  /** A connection that stays ICE-`disconnected` this long is dropped as `connection_lost` (default 5000 ms). */
  disconnectTimeoutMs?: number;
  /** Largest data channel frame (default 16384 bytes); larger reliable messages are chunked. */
  frameBytes?: number;
  /** Largest message sent or accepted on an ordered reliable channel (default 16 MiB). */
  maxMessageBytes?: number;
  /** Most bytes waiting in this client per peer and channel before `send` throws `send_queue_full` (default 32 MiB: room for a largest message and its framing). */
  maxBufferedBytes?: number;
  /** Frames are handed to the browser while its channel buffer holds less than this (default 1 MiB). */
  bufferedHighBytes?: number;
  /** `"relay"`: use only TURN relay candidates (hides your address; tests TURN). Default `"all"`. */
  iceTransportPolicy?: RTCIceTransportPolicy;
}

/** Options of `joinRoom`. Every limit has a default; docs/configuration.md lists them all. */
export interface RoomOptions extends ConnectionOptions {
  /** A user name, unique in the room (1-64 of `A-Za-z0-9_.-`); others can address you by it. */
  user?: string;
  /** An auth token (JWT) when the server requires one: sent as `?token=`. */
  token?: string;
  /** Signaling encoding (default `"json"`). */
  encoding?: Encoding;
  /** ICE servers (default: what the server's `welcome` lists, i.e. its built-in STUN server). */
  iceServers?: RTCIceServer[];
  /** When this join creates the room: `mesh` (default, everyone connects to everyone) or `star` (clients connect only to the host). */
  topology?: "mesh" | "star";
  /** When this join creates the room: most peers (default: the server's limit). */
  capacity?: number;
  /** When this join creates the room: `migrate` (default: the oldest peer becomes host) or `close` (the room closes). */
  hostLeaves?: "migrate" | "close";
  /** When this join creates the room: list it in `/rooms`. */
  public?: boolean;
  /** When this join creates the room: metadata for the listing (a small JSON object). */
  meta?: Record<string, unknown>;
  /**
   * Keep your id across reloads and dropped connections: the resume token is kept in
   * `sessionStorage` (per URL) and used on the next `joinRoom` with the same URL. Others keep you
   * in the room for the server's resume grace period (default 10 s), so a peer that closes its
   * page is reported left only after that period. In a cluster, when the server node drains (a
   * rolling restart: close `draining`, 1012) the room connects again by itself with its token
   * (the load balancer picks another node): same id, same peers, data channels untouched.
   */
  resume?: boolean;
  /**
   * Close the signaling socket once every peer you should connect to is connected and the room is
   * full or started (a match or a session): saves server memory; the room keeps you as a member.
   * Peers who join later cannot reach you. See docs/protocol.md, "Close-after-connect".
   */
  closeSignalingWhenConnected?: boolean;
  /** Where resume tokens are kept (default `sessionStorage`). */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  /** Give up joining when no `welcome` arrives within this time (default 10000 ms). */
  joinTimeoutMs?: number;
  /** A peer whose channels are not all open this long after it appeared is dropped as `connection_failed` (default 20000 ms). */
  connectTimeoutMs?: number;
  /** Candidates kept per peer while its description is pending (default 64). */
  maxQueuedCandidates?: number;
  /** WebSocket implementation (default: the global one; pass `ws` in Node). */
  WebSocket?: typeof WebSocket;
}

/** The defaults of every numeric option. */
export const DEFAULTS = Object.freeze({
  joinTimeoutMs: 10_000,
  connectTimeoutMs: 20_000,
  disconnectTimeoutMs: 5_000,
  frameBytes: 16 * 1024,
  maxMessageBytes: 16 * 1024 * 1024,
  maxBufferedBytes: 32 * 1024 * 1024,
  bufferedHighBytes: 1024 * 1024,
  maxQueuedCandidates: 64,
});

/** Options with every default filled in. */
export type Resolved = Required<Pick<RoomOptions, "channels" | "encoding" | "resume" | "closeSignalingWhenConnected">> &
  Record<keyof typeof DEFAULTS, number> &
  Pick<RoomOptions, "iceServers" | "iceTransportPolicy" | "user" | "storage" | "WebSocket">;

/** Validates options and fills in defaults; throws `invalid_options`. */
export function resolveOptions(options: RoomOptions): Resolved {
  const resolved: Resolved = {
    ...DEFAULTS,
    channels: options.channels ?? DEFAULT_CHANNELS,
    encoding: options.encoding ?? "json",
    iceServers: options.iceServers,
    iceTransportPolicy: options.iceTransportPolicy,
    user: options.user,
    resume: options.resume ?? false,
    closeSignalingWhenConnected: options.closeSignalingWhenConnected ?? false,
    storage: options.storage ?? (typeof sessionStorage === "undefined" ? undefined : sessionStorage),
    WebSocket: options.WebSocket,
  };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new SwitchboardError("invalid_options", `${key} must be a positive number`);
    }
    resolved[key] = value;
  }
  if (resolved.iceTransportPolicy !== undefined && resolved.iceTransportPolicy !== "all" && resolved.iceTransportPolicy !== "relay") {
    throw new SwitchboardError("invalid_options", 'iceTransportPolicy must be "all" or "relay"');
  }
  if (resolved.encoding !== "json" && resolved.encoding !== "msgpack") {
    throw new SwitchboardError("invalid_options", 'encoding must be "json" or "msgpack"');
  }
  if (resolved.frameBytes < 64 || resolved.frameBytes > 256 * 1024) {
    throw new SwitchboardError("invalid_options", "frameBytes must be between 64 and 262144");
  }
  return resolved;
}

/** The room-creation options as query parameters (the server validates them). */
export function joinParams(options: RoomOptions): JoinParams {
  const params: JoinParams = {};
  if (options.topology !== undefined) params.topology = options.topology;
  if (options.capacity !== undefined) params.capacity = String(options.capacity);
  if (options.hostLeaves !== undefined) params.host_leaves = options.hostLeaves;
  if (options.public !== undefined) params.public = String(options.public);
  if (options.meta !== undefined) params.meta = JSON.stringify(options.meta);
  if (options.resume) params.resumable = "true";
  if (options.token !== undefined) params.token = options.token;
  return params;
}
