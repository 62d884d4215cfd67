/**
 * A peer-to-peer room: the signaling socket to the hub, and a full mesh of WebRTC connections to
 * the other peers of the room. This is the shell; the decisions live in `Membership`,
 * `Negotiation`, `framing` and `signaling`.
 */
import { type ChannelOptions, type ChannelSpec, DEFAULT_CHANNELS, channelSpecs, channelsFingerprint } from "./channels.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import type { Payload, Received } from "./framing.js";
import { Membership } from "./membership.js";
import type { Role, Signal } from "./negotiation.js";
import { Connection, type ConnectionLimits } from "./connection.js";
import {
  type ClientMessage,
  type Encoding,
  type PeerInfo,
  type ServerMessage,
  type Welcome,
  decodeServerMessage,
  encodeClientMessage,
  isPeerId,
  roomUrl,
} from "./signaling.js";

/** Options of `joinRoom`. Every limit has a default; docs/configuration.md lists them all. */
export interface RoomOptions {
  /** Channels every peer of the room declares (default: `reliable` and `unreliable`). */
  channels?: Record<string, ChannelOptions>;
  /** A user name, unique in the room (1-64 of `A-Za-z0-9_.-`); others can address you by it. */
  user?: string;
  /** Signaling encoding (default `"json"`). */
  encoding?: Encoding;
  /** ICE servers (default: what the server's `welcome` lists, i.e. its built-in STUN server). */
  iceServers?: RTCIceServer[];
  /** Give up joining when no `welcome` arrives within this time (default 10000 ms). */
  joinTimeoutMs?: number;
  /** A peer whose channels are not all open this long after it joined is dropped as `connection_failed` (default 20000 ms). */
  connectTimeoutMs?: number;
  /** A connection that stays ICE-`disconnected` this long is dropped as `connection_lost` (default 5000 ms). */
  disconnectTimeoutMs?: number;
  /** Largest data channel frame (default 16384 bytes); larger reliable messages are chunked. */
  frameBytes?: number;
  /** Largest message sent or accepted on an ordered reliable channel (default 16 MiB). */
  maxMessageBytes?: number;
  /** Most bytes waiting in this client per peer and channel before `send` throws `send_queue_full` (default 16 MiB). */
  maxBufferedBytes?: number;
  /** Frames are handed to the browser while its channel buffer holds less than this (default 1 MiB). */
  bufferedHighBytes?: number;
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
  maxBufferedBytes: 16 * 1024 * 1024,
  bufferedHighBytes: 1024 * 1024,
  maxQueuedCandidates: 64,
});

/** A peer of the room, as events report it. */
export interface Peer extends PeerInfo {
  /** Whether the data channels to this peer are open. */
  readonly connected: boolean;
}

/** Events of a room, by name. */
export interface RoomEvents {
  /** A peer is in the room (present when you joined, or joined later). Connection follows. */
  join: { peer: PeerInfo };
  /** Every channel to the peer is open: `send` works. */
  connect: { peer: PeerInfo };
  /** The WebRTC connection state to a peer changed. */
  state: { peer: PeerInfo; state: RTCPeerConnectionState };
  /** A whole message from a peer on a channel: text as `string`, binary as `Uint8Array`. */
  message: { peer: PeerInfo; channel: string; data: Received };
  /**
   * A peer is gone, reported once. `reason`: from the hub `closed`, `timeout`, `slow_reader`,
   * `shutdown`; from the connection `disconnected` (its channels closed, e.g. the page was
   * closed), `connection_failed` (ICE failed or the connect timeout passed), `connection_lost`
   * (ICE disconnected for `disconnectTimeoutMs`), `channel_mismatch`.
   */
  leave: { peer: PeerInfo; reason: string };
  /** A problem that does not end the room (a bad message, a refused send from the hub...). */
  error: { error: SwitchboardError; peer?: PeerInfo };
  /** The room is closed (by `close()`, the server or a timeout); no events follow. */
  close: { code: string; reason: string };
}

type Resolved = Required<Omit<RoomOptions, "iceServers" | "user" | "WebSocket">> & Pick<RoomOptions, "iceServers" | "user">;

function resolveOptions(options: RoomOptions): Resolved {
  const resolved: Resolved = {
    ...DEFAULTS,
    channels: options.channels ?? DEFAULT_CHANNELS,
    encoding: options.encoding ?? "json",
    iceServers: options.iceServers,
    user: options.user,
  };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new SwitchboardError("invalid_options", `${key} must be a positive number`);
    }
    resolved[key] = value;
  }
  if (resolved.encoding !== "json" && resolved.encoding !== "msgpack") {
    throw new SwitchboardError("invalid_options", "encoding must be \"json\" or \"msgpack\"");
  }
  if (resolved.frameBytes < 64 || resolved.frameBytes > 256 * 1024) {
    throw new SwitchboardError("invalid_options", "frameBytes must be between 64 and 262144");
  }
  return resolved;
}

/**
 * Joins a room and resolves once the server has accepted you. `url` is the room's endpoint,
 * e.g. `ws://localhost:8080/ws/lobby` (`http(s)` and relative URLs work too). Events start on
 * the next task after the promise resolves, so handlers attached right after `await` see every
 * peer. Rejects with a `SwitchboardError` (never leaves a rejection unhandled).
 */
export function joinRoom(url: string, options: RoomOptions = {}): Promise<Room> {
  return new Promise<Room>((resolve, reject) => {
    let resolved: Resolved;
    let specs: ChannelSpec[];
    let socket: WebSocket;
    try {
      resolved = resolveOptions(options);
      specs = channelSpecs(resolved.channels);
      const base = typeof location === "undefined" ? undefined : location.href;
      const target = roomUrl(url, base, { encoding: resolved.encoding, user: resolved.user });
      const Socket = options.WebSocket ?? globalThis.WebSocket;
      if (Socket === undefined) throw new SwitchboardError("invalid_options", "no WebSocket implementation");
      socket = new Socket(target);
    } catch (error) {
      reject(error instanceof SwitchboardError ? error : new SwitchboardError("connection_failed", String((error as Error)?.message ?? error)));
      return;
    }
    socket.binaryType = "arraybuffer";
    let settled = false;
    const fail = (error: SwitchboardError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close();
      } catch {
        // already closed
      }
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new SwitchboardError("join_timeout", `no welcome from the server within ${resolved.joinTimeoutMs} ms`)),
      resolved.joinTimeoutMs,
    );
    socket.onerror = () => {
      // The close event that follows carries the details.
    };
    socket.onclose = (event: CloseEvent) => fail(closeError(event));
    socket.onmessage = (event: MessageEvent) => {
      let message: ServerMessage | null;
      try {
        message = decodeServerMessage(event.data, resolved.encoding);
      } catch (error) {
        fail(error as SwitchboardError);
        return;
      }
      if (message === null) return;
      if (message.type === "error") {
        fail(new SwitchboardError(message.code, message.message));
        return;
      }
      if (message.type !== "welcome") {
        fail(new SwitchboardError("bad_server_message", `expected welcome, got ${message.type}`));
        return;
      }
      settled = true;
      clearTimeout(timer);
      const room = new Room(socket, message, specs, resolved);
      resolve(room);
      setTimeout(() => room.begin(), 0);
    };
  });
}

function closeError(event: CloseEvent): SwitchboardError {
  if (event.code >= 4000 || event.code === 1009 || event.code === 1001) {
    if (event.reason) return new SwitchboardError(event.reason, `the server closed the connection: ${event.reason} (${event.code})`);
  }
  return new SwitchboardError("connection_closed", `the connection closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
}

/** A joined room. Create it with `joinRoom`. */
export class Room {
  /** Your id in the room, assigned by the server. */
  readonly id: string;
  /** Your user name, if you chose one. */
  readonly name: string | undefined;
  /** The room's name. */
  readonly room: string;

  private readonly events = new Emitter<RoomEvents>();
  private readonly membership = new Membership();
  private readonly links = new Map<string, Connection>();
  private readonly fingerprint: string;
  private readonly rtc: RTCConfiguration;
  private readonly limits: ConnectionLimits;
  private readonly inbox: ServerMessage[] = [];
  private started = false;
  private closed = false;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastHeard = Date.now();
  private nonce = 0;

  /** @internal Use `joinRoom`. */
  constructor(
    private readonly socket: WebSocket,
    private readonly welcome: Welcome,
    private readonly specs: ChannelSpec[],
    private readonly options: Resolved,
  ) {
    this.id = welcome.id;
    this.name = welcome.name;
    this.room = welcome.room;
    this.fingerprint = channelsFingerprint(specs);
    this.rtc = { iceServers: options.iceServers ?? welcome.ice_servers };
    this.limits = {
      frameBytes: options.frameBytes,
      maxMessageBytes: options.maxMessageBytes,
      maxBufferedBytes: options.maxBufferedBytes,
      bufferedHighBytes: options.bufferedHighBytes,
      connectTimeoutMs: options.connectTimeoutMs,
      disconnectTimeoutMs: options.disconnectTimeoutMs,
      maxQueuedCandidates: options.maxQueuedCandidates,
    };
    socket.onmessage = (event: MessageEvent) => this.frame(event.data);
    socket.onclose = (event: CloseEvent) => {
      const error = closeError(event);
      this.shutdown(error.code, error.message);
    };
  }

  /** Calls `handler` for every event of `type`; returns a function that unsubscribes it. */
  on<K extends keyof RoomEvents>(type: K, handler: (event: RoomEvents[K]) => void): () => void {
    return this.events.on(type, handler);
  }

  /** Removes a handler added with `on`. */
  off<K extends keyof RoomEvents>(type: K, handler: (event: RoomEvents[K]) => void): void {
    this.events.off(type, handler);
  }

  /** The other peers present, oldest first. */
  get peers(): Peer[] {
    return this.membership.peers().map((peer) => ({ ...peer, connected: this.links.get(peer.id)?.connected ?? false }));
  }

  /** The declared channels, with their fixed ids. */
  get channels(): readonly ChannelSpec[] {
    return this.specs;
  }

  /** Whether the room is closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** ICE servers in use. */
  get iceServers(): RTCIceServer[] {
    return this.rtc.iceServers ?? [];
  }

  /**
   * Sends a message to one peer on a channel. Throws `SwitchboardError`: `room_closed`,
   * `unknown_peer`, `peer_not_connected`, `unknown_channel`, `message_too_big`, `send_queue_full`.
   */
  send(peer: string | PeerInfo, channel: string, data: Payload): void {
    if (this.closed) throw new SwitchboardError("room_closed", "the room is closed");
    const id = typeof peer === "string" ? peer : peer.id;
    const link = this.links.get(id);
    if (link === undefined) throw new SwitchboardError("unknown_peer", `no peer ${id} in the room`);
    link.send(channel, data);
  }

  /**
   * Sends a message to every connected peer; returns how many it went to. Peers still connecting
   * are skipped. Throws like `send` for problems with the message itself.
   */
  broadcast(channel: string, data: Payload): number {
    if (this.closed) throw new SwitchboardError("room_closed", "the room is closed");
    if (!this.specs.some((spec) => spec.name === channel)) {
      throw new SwitchboardError("unknown_channel", `no channel named ${channel}`);
    }
    let sent = 0;
    for (const link of this.links.values()) {
      if (!link.connected) continue;
      link.send(channel, data);
      sent += 1;
    }
    return sent;
  }

  /** Negotiated properties of the channel to a peer, as the browser reports them. */
  channelInfo(peer: string, channel: string): ReturnType<Connection["channelInfo"]> {
    return this.links.get(peer)?.channelInfo(channel);
  }

  /**
   * The connection to a peer: the same object a pairing gives (its own `send`, `on`, `rtc` for
   * `getStats()`). Room events already cover it; this is for per-peer code.
   */
  connection(peer: string | PeerInfo): Connection | undefined {
    return this.links.get(typeof peer === "string" ? peer : peer.id);
  }

  /** Leaves the room: closes the signaling socket and every peer connection. */
  close(): void {
    this.shutdown("room_closed", "closed by the application");
  }

  /** @internal Starts delivering events (called on the task after `joinRoom` resolves). */
  begin(): void {
    if (this.started || this.closed) return;
    this.started = true;
    const interval = Math.max(this.welcome.heartbeat_ms, 100);
    const timeout = Math.max(this.welcome.idle_timeout_ms, interval * 2);
    this.lastHeard = Date.now();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > timeout) {
        this.shutdown("server_timeout", `nothing from the server for ${timeout} ms`);
        return;
      }
      this.nonce = (this.nonce + 1) % 0x7fffffff;
      this.transmit({ type: "ping", nonce: this.nonce });
    }, interval);
    for (const peer of this.welcome.peers) this.admit(peer, "answerer");
    for (const message of this.inbox.splice(0)) this.dispatch(message);
  }

  private frame(data: unknown): void {
    if (this.closed) return;
    this.lastHeard = Date.now();
    let message: ServerMessage | null;
    try {
      message = decodeServerMessage(data as string | ArrayBuffer, this.options.encoding);
    } catch (error) {
      this.events.emit("error", { error: error as SwitchboardError });
      return;
    }
    if (message === null) return;
    if (!this.started) this.inbox.push(message);
    else this.dispatch(message);
  }

  private dispatch(message: ServerMessage): void {
    if (this.closed) return;
    switch (message.type) {
      case "peer_joined":
        if (message.id !== this.id) this.admit(message.name === undefined ? { id: message.id } : { id: message.id, name: message.name }, "offerer");
        return;
      case "peer_left":
        this.depart(message.id, message.reason);
        return;
      case "signal":
        this.links.get(message.from)?.receive(message.data);
        return;
      case "error":
        this.events.emit("error", { error: new SwitchboardError(message.code, message.message) });
        return;
      case "welcome":
        this.events.emit("error", { error: new SwitchboardError("bad_server_message", "a second welcome") });
        return;
      case "message":
      case "pong":
        return;
    }
  }

  private admit(peer: PeerInfo, role: Role): void {
    if (!isPeerId(peer.id) || !this.membership.join(peer)) return;
    this.events.emit("join", { peer });
    let link: Connection;
    try {
      link = new Connection(role, this.specs, this.fingerprint, this.rtc, this.limits, (data: Signal) =>
        this.transmit({ type: "signal", to: { peer: peer.id }, data }),
      );
      link.on("open", () => this.events.emit("connect", { peer }));
      link.on("state", ({ state }) => this.events.emit("state", { peer, state }));
      link.on("message", ({ channel, data }) => this.events.emit("message", { peer, channel, data }));
      link.on("error", ({ error }) => this.events.emit("error", { error, peer }));
      link.on("close", ({ reason }) => this.depart(peer.id, reason));
    } catch (error) {
      this.events.emit("error", { error: new SwitchboardError("webrtc_error", (error as Error).message), peer });
      this.depart(peer.id, "connection_failed");
      return;
    }
    this.links.set(peer.id, link);
    link.start();
  }

  private depart(id: string, reason: string): void {
    const link = this.links.get(id);
    this.links.delete(id);
    link?.close();
    const peer = this.membership.leave(id);
    if (peer !== null) this.events.emit("leave", { peer, reason });
  }

  private transmit(message: ClientMessage): void {
    if (this.closed || this.socket.readyState !== 1) return;
    try {
      this.socket.send(encodeClientMessage(message, this.options.encoding));
    } catch (error) {
      this.events.emit("error", { error: new SwitchboardError("connection_closed", (error as Error).message) });
    }
  }

  private shutdown(code: string, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.socket.onmessage = this.socket.onclose = null;
    try {
      this.socket.close(1000);
    } catch {
      // already closed
    }
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.membership.clear();
    this.events.emit("close", { code, reason });
    this.events.clear();
  }
}
