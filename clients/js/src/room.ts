/**
 * A peer-to-peer room: the signaling socket to the hub, and WebRTC connections to the other
 * peers of the room (all of them in a mesh; host and clients in a star). This is the shell; the
 * decisions live in `Membership`, `Negotiation`, `topology`, `framing` and `signaling`.
 */
import { type ChannelSpec, channelsFingerprint } from "./channels.js";
import { Connection, type ConnectionLimits } from "./connection.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError, closeError } from "./errors.js";
import type { Payload, Received } from "./framing.js";
import { Membership } from "./membership.js";
import type { Role, Signal } from "./negotiation.js";
import type { Resolved } from "./options.js";
import {
  type ClientMessage,
  type PeerInfo,
  type RoomInfo,
  type ServerMessage,
  type Welcome,
  decodeServerMessage,
  encodeClientMessage,
  isPeerId,
} from "./signaling.js";
import { roleFor, shouldLink } from "./topology.js";

/** Most messages held for the server while the signaling socket moves to another node. */
const MAX_WAITING = 1024;
/** Failures of a reconnect during a move that are worth another attempt: the node reached was draining too, gone, or slow. */
const RETRYABLE = new Set(["draining", "unavailable", "connection_failed", "connection_closed", "join_timeout"]);
/** The wait before the next reconnect during a move, after `failed` failed ones: 100 ms doubling, at most 2 s. */
const retryDelay = (failed: number): number => Math.min(100 * 2 ** Math.min(failed, 5), 2000);

/** A peer of the room, as `room.peers` reports it. */
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
  /** The WebRTC connection state to a peer changed (`disconnected` also when a resumable peer's connection dropped). */
  state: { peer: PeerInfo; state: RTCPeerConnectionState };
  /** A whole message from a peer on a channel: text as `string`, binary as `Uint8Array`. */
  message: { peer: PeerInfo; channel: string; data: Received };
  /**
   * A peer is gone, reported once. `reason`: from the hub `closed`, `timeout`, `slow_reader`,
   * `shutdown`, `kicked`, `gone`; from the connection `disconnected` (its channels closed, e.g.
   * the page was closed), `connection_failed` (ICE failed or the connect timeout passed),
   * `connection_lost` (ICE disconnected for `disconnectTimeoutMs`), `channel_mismatch`.
   */
  leave: { peer: PeerInfo; reason: string };
  /** The room has a new host. */
  host: { host: string };
  /** A match is full and starts. */
  started: Record<string, never>;
  /** The host changed the room's metadata. */
  meta: { meta: Record<string, unknown> };
  /** A problem that does not end the room (a bad message, a refused request...). */
  error: { error: SwitchboardError; peer?: PeerInfo };
  /**
   * The room is over for you (`close()`, kicked, the room closed, the server went away or timed
   * out); no events follow. `code`: `room_closed` after `close()`, else the server's or the
   * client's error code (`kicked`, `room_closed`, `shutdown`, `server_timeout`, ...).
   */
  close: { code: string; reason: string };
}

/** Where the room keeps its resume token. */
export interface TokenStore {
  storage: Resolved["storage"];
  key: string;
}

/** A joined room. Create it with `joinRoom` (or `createRoom`, `matchmake`...). */
export class Room {
  /** Your id in the room, assigned by the server (the same after a resume). */
  readonly id: string;
  /** Your user name, if you chose one. */
  readonly name: string | undefined;
  /** The room's name (or code, or session id). */
  readonly room: string;
  /** This join resumed an earlier one: same id, the others saw no leave. */
  readonly resumed: boolean;

  private readonly events = new Emitter<RoomEvents>();
  private readonly membership = new Membership();
  private readonly links = new Map<string, Connection>();
  private readonly fingerprint: string;
  private rtc: RTCConfiguration;
  private readonly limits: ConnectionLimits;
  private readonly inbox: ServerMessage[] = [];
  private roomInfo: RoomInfo;
  private started = false;
  private closed = false;
  private detached = false;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastHeard = Date.now();
  private nonce = 0;
  /** The latest resume token (a resume hands out a new one). */
  private token: string | undefined;
  /** The signaling socket is being replaced (`draining`): messages wait in `waiting`. */
  private moving = false;
  private readonly waiting: ClientMessage[] = [];

  /** @internal Use `joinRoom`. */
  constructor(
    private socket: WebSocket,
    private readonly welcome: Welcome,
    private readonly specs: ChannelSpec[],
    private readonly options: Resolved,
    private readonly tokens: TokenStore | undefined,
    private readonly reopen?: (token: string) => Promise<{ socket: WebSocket; welcome: Welcome }>,
  ) {
    this.id = welcome.id;
    this.name = welcome.name;
    this.room = welcome.room;
    this.resumed = welcome.resumed === true;
    this.roomInfo = { ...welcome.room_info };
    this.fingerprint = channelsFingerprint(specs);
    this.rtc = { iceServers: options.iceServers ?? welcome.ice_servers };
    if (options.iceTransportPolicy !== undefined) this.rtc.iceTransportPolicy = options.iceTransportPolicy;
    this.limits = {
      frameBytes: options.frameBytes,
      maxMessageBytes: options.maxMessageBytes,
      maxBufferedBytes: options.maxBufferedBytes,
      bufferedHighBytes: options.bufferedHighBytes,
      connectTimeoutMs: options.connectTimeoutMs,
      disconnectTimeoutMs: options.disconnectTimeoutMs,
      maxQueuedCandidates: options.maxQueuedCandidates,
    };
    this.storeToken(welcome.resume_token);
    this.token = welcome.resume_token;
    this.attach(socket);
  }

  /** Takes a welcomed signaling socket as this room's. */
  private attach(socket: WebSocket): void {
    this.socket = socket;
    socket.onmessage = (event: MessageEvent) => this.frame(event.data);
    socket.onclose = (event: CloseEvent) => {
      if (event.code === 1000 && event.reason === "detached") {
        this.detached = true;
        clearInterval(this.heartbeat);
        return;
      }
      if (event.code === 1012 && event.reason === "draining" && this.token !== undefined && this.reopen !== undefined) {
        void this.moveSignaling(this.token, this.reopen);
        return;
      }
      const error = closeError(event);
      this.shutdown(error.code, error.message);
    };
  }

  /**
   * The server node is draining (a cluster's rolling restart): connect again with the resume
   * token (the load balancer picks another node), keep the id, the peers and their data
   * channels. What the room sends meanwhile waits for the new socket.
   */
  private async moveSignaling(token: string, reopen: (token: string) => Promise<{ socket: WebSocket; welcome: Welcome }>): Promise<void> {
    this.moving = true;
    this.lastHeard = Date.now();
    try {
      const { socket, welcome } = await this.reopenWhileKept(token, reopen);
      if (this.closed) {
        socket.close(1000);
        return;
      }
      if (welcome.id !== this.id || welcome.resumed !== true) {
        socket.close(1000);
        this.shutdown("resume_failed", "the room could not be resumed on another server node");
        return;
      }
      this.token = welcome.resume_token;
      this.storeToken(welcome.resume_token);
      this.lastHeard = Date.now();
      this.attach(socket);
      this.moving = false;
      for (const message of this.waiting.splice(0)) this.transmit(message);
    } catch (error) {
      const failure = error as SwitchboardError;
      this.shutdown(failure.code ?? "connection_closed", failure.message);
    }
  }

  /**
   * Connects again with the resume token; an attempt that reaches a node that is draining too (a
   * balancer that has not taken it out yet), or gone, is tried again while the server keeps the
   * place (`resume_grace_ms`) and the room is open.
   */
  private async reopenWhileKept(token: string, reopen: (token: string) => Promise<{ socket: WebSocket; welcome: Welcome }>): Promise<{ socket: WebSocket; welcome: Welcome }> {
    const deadline = Date.now() + (this.welcome.resume_grace_ms ?? 0);
    for (let failed = 0; ; failed++) {
      try {
        return await reopen(token);
      } catch (error) {
        const delay = retryDelay(failed);
        if (this.closed || !RETRYABLE.has((error as SwitchboardError).code) || Date.now() + delay >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
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

  /** The room's settings and state: kind, topology, capacity, host, metadata, started. */
  get info(): Readonly<RoomInfo> {
    return this.roomInfo;
  }

  /** The host's id. */
  get host(): string | undefined {
    return this.roomInfo.host;
  }

  /** Whether you are the host (you may `kick` and `setMeta`). */
  get isHost(): boolean {
    return this.roomInfo.host === this.id;
  }

  /** The declared channels, with their fixed ids. */
  get channels(): readonly ChannelSpec[] {
    return this.specs;
  }

  /** Whether the room is closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** `open`, `detached` (signaling closed on purpose, peers still connected) or `closed`. */
  get signaling(): "open" | "detached" | "closed" {
    return this.closed ? "closed" : this.detached ? "detached" : "open";
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
    if (link === undefined) {
      if (this.membership.get(id) !== undefined) {
        throw new SwitchboardError("peer_not_connected", `no connection to ${id} (star rooms connect clients only to the host)`);
      }
      throw new SwitchboardError("unknown_peer", `no peer ${id} in the room`);
    }
    link.send(channel, data);
  }

  /**
   * Sends a message to every connected peer; returns how many it went to. Peers still connecting
   * (and, in a star, the other clients) are skipped. Throws like `send` for problems with the
   * message itself.
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

  /** Host only: removes a peer from the room. Throws `not_host`; the server confirms with `leave`. */
  kick(peer: string | PeerInfo): void {
    this.requireHost("kick");
    this.transmit({ type: "kick", peer: typeof peer === "string" ? peer : peer.id });
  }

  /** Host only: replaces the room's metadata (shown in `/rooms` for public rooms). */
  setMeta(meta: Record<string, unknown>): void {
    this.requireHost("set the metadata");
    this.roomInfo = { ...this.roomInfo, meta };
    this.transmit({ type: "set_meta", meta });
  }

  /**
   * Web Push: stores this browser's push subscription under your user name in this room, so a
   * `requestConnection` from another user reaches you while you are away (see `subscribeToPush`
   * and docs/protocol.md). Needs a user name and a server with push on.
   */
  pushSubscribe(subscription: PushSubscription | PushSubscriptionJSON): void {
    const json = "toJSON" in subscription ? subscription.toJSON() : subscription;
    this.transmit({ type: "push_subscribe", subscription: json });
  }

  /** Web Push: forgets your push subscription. */
  pushUnsubscribe(): void {
    this.transmit({ type: "push_unsubscribe" });
  }

  /**
   * Web Push: asks the user `name` of this room, who is not connected, to connect: the server
   * pushes to its subscription who asks and where. Refusals arrive as `error` events
   * (`unknown_name`: no subscription; `throttled`: pushed enough for now).
   */
  requestConnection(name: string): void {
    this.transmit({ type: "connection_request", name });
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

  /** Leaves the room for good: closes the signaling socket and every peer connection. */
  close(): void {
    if (this.tokens !== undefined) {
      try {
        this.tokens.storage?.removeItem(this.tokens.key);
      } catch {
        // storage unavailable
      }
    }
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
    for (const peer of this.welcome.peers) this.admit(peer, roleFor("present-at-welcome", this.resumed));
    for (const message of this.inbox.splice(0)) this.dispatch(message);
  }

  private requireHost(what: string): void {
    if (this.closed) throw new SwitchboardError("room_closed", "the room is closed");
    if (!this.isHost) throw new SwitchboardError("not_host", `only the host may ${what}`);
  }

  private storeToken(token: string | undefined): void {
    if (this.tokens === undefined || token === undefined) return;
    try {
      this.tokens.storage?.setItem(this.tokens.key, token);
    } catch {
      // storage full or unavailable: this join just cannot be resumed
    }
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
      case "peer_joined": {
        if (message.id === this.id) return;
        const peer: PeerInfo = { id: message.id, ...(message.name === undefined ? {} : { name: message.name }), ...(message.resumable ? { resumable: true } : {}) };
        this.admit(peer, roleFor("joined-later", false));
        return;
      }
      case "peer_left":
        this.depart(message.id, message.reason);
        return;
      case "signal":
        this.signal(message.from, message.data);
        return;
      case "host_changed":
        this.hostChanged(message.host);
        return;
      case "room_started":
        this.roomInfo = { ...this.roomInfo, started: true };
        this.events.emit("started", {});
        this.maybeDetach();
        return;
      case "room_updated":
        this.roomInfo = { ...this.roomInfo, meta: message.meta };
        this.events.emit("meta", { meta: message.meta });
        return;
      case "ice_servers":
        this.iceServersChanged(message.ice_servers);
        return;
      case "error":
        // `draining` comes right before the close that moves the room (or, without a resume
        // token, ends it with that code): as in the Rust client, the close tells it.
        if (message.code === "draining") return;
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

  /** Fresh ICE servers from the server (new TURN credentials): for new and open connections alike, unless the application chose its own. */
  private iceServersChanged(iceServers: RTCIceServer[]): void {
    if (this.options.iceServers !== undefined) return;
    this.rtc = { ...this.rtc, iceServers };
    for (const link of this.links.values()) link.setIceServers(iceServers);
  }

  /** A signal from a peer: to its connection, or (an offer) the start of a new one. */
  private signal(from: string, data: unknown): void {
    const peer = this.membership.get(from);
    if (peer === undefined) return;
    const isOffer = typeof data === "object" && data !== null && (data as { type?: unknown }).type === "offer";
    const existing = this.links.get(from);
    // A resumed peer (or a new host) offers again: a fresh connection replaces any old one.
    if (isOffer && (existing === undefined || peer.resumable === true) && shouldLink(this.id, from, this.roomInfo)) {
      existing?.close();
      this.link(peer, "answerer");
    }
    this.links.get(from)?.receive(data);
  }

  private hostChanged(host: string): void {
    this.roomInfo = { ...this.roomInfo, host };
    this.events.emit("host", { host });
    if (this.roomInfo.topology !== "star") return;
    // The new host connects to every client; clients wait for its offer.
    for (const peer of this.membership.peers()) {
      if (this.links.has(peer.id) || !shouldLink(this.id, peer.id, this.roomInfo)) continue;
      if (host === this.id) this.link(peer, roleFor("new-host-me", false));
    }
  }

  private admit(peer: PeerInfo, role: Role): void {
    if (!isPeerId(peer.id) || !this.membership.join(peer)) return;
    this.events.emit("join", { peer });
    if (shouldLink(this.id, peer.id, this.roomInfo)) this.link(peer, role);
  }

  private link(peer: PeerInfo, role: Role): void {
    let link: Connection;
    try {
      link = new Connection(role, this.specs, this.fingerprint, this.rtc, this.limits, (data: Signal) =>
        this.transmit({ type: "signal", to: { peer: peer.id }, data }),
      );
    } catch (error) {
      this.events.emit("error", { error: new SwitchboardError("webrtc_error", (error as Error).message), peer });
      this.depart(peer.id, "connection_failed");
      return;
    }
    link.on("open", () => {
      this.events.emit("connect", { peer });
      this.maybeDetach();
    });
    link.on("state", ({ state }) => this.events.emit("state", { peer, state }));
    link.on("message", ({ channel, data }) => this.events.emit("message", { peer, channel, data }));
    link.on("error", ({ error }) => this.events.emit("error", { error, peer }));
    link.on("close", ({ reason }) => this.linkClosed(peer, link, reason));
    this.links.set(peer.id, link);
    link.start();
  }

  /** A connection ended. For a resumable peer that is not yet a leave: it may come back. */
  private linkClosed(peer: PeerInfo, link: Connection, reason: string): void {
    if (this.links.get(peer.id) !== link) return;
    this.links.delete(peer.id);
    // A detached peer cannot tell the server it is gone: its peers do.
    this.transmit({ type: "gone", peer: peer.id });
    if (peer.resumable === true && !this.detached) {
      this.events.emit("state", { peer, state: "disconnected" });
      return;
    }
    this.depart(peer.id, reason);
  }

  private depart(id: string, reason: string): void {
    const link = this.links.get(id);
    this.links.delete(id);
    link?.close();
    const peer = this.membership.leave(id);
    if (peer !== null) this.events.emit("leave", { peer, reason });
  }

  /** Close-after-connect: detach once every expected peer is connected and the room is complete. */
  private maybeDetach(): void {
    if (!this.options.closeSignalingWhenConnected || this.detached || this.closed) return;
    const complete = this.roomInfo.started === true || this.membership.peers().length + 1 >= this.roomInfo.capacity;
    const expected = this.membership.peers().filter((p) => shouldLink(this.id, p.id, this.roomInfo));
    if (complete && expected.every((p) => this.links.get(p.id)?.connected)) {
      this.transmit({ type: "detach" });
    }
  }

  private transmit(message: ClientMessage): void {
    if (this.moving && !this.closed) {
      if (message.type !== "ping" && this.waiting.length < MAX_WAITING) this.waiting.push(message);
      return;
    }
    if (this.closed || this.detached || this.socket.readyState !== 1) return;
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
