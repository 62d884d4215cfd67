/**
 * The WebSocket fallback to a server peer (`GET /connect/ws`), for networks where UDP is blocked:
 * the same events, `send` and `close` as a WebRTC `Connection`, over one WebSocket. Every
 * WebSocket message is one channel byte (the channel's id) and one data channel frame, so large
 * reliable messages are chunked exactly as on a data channel. Over TCP every channel is reliable
 * and ordered: `channelInfo` says so.
 */
import type { ChannelSpec } from "./channels.js";
import type { ChannelInfo, ConnectionEvents, ConnectionLimits } from "./connection.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import { whyRefused } from "./refusal.js";
import { Goodbye, encodeFrames, goodbyeFrame, type Payload, type Received, Reassembler } from "./framing.js";

/** Close codes (RFC 6455): normal, and abnormal (no close frame: the connection dropped). */
const CLOSE_NORMAL = 1000;
const CLOSE_ABNORMAL = 1006;

/** One WebSocket message: the channel byte, then the frame. */
export function socketMessage(channelId: number, frame: Uint8Array): Uint8Array {
  const message = new Uint8Array(frame.byteLength + 1);
  message[0] = channelId;
  message.set(frame, 1);
  return message;
}

/** A connection to a server peer over its WebSocket fallback. */
export class SocketConnection {
  /** How this connection travels. */
  readonly transport = "websocket" as const;
  private readonly events = new Emitter<ConnectionEvents>();
  private readonly specsByName = new Map<string, ChannelSpec>();
  private readonly reassemblers = new Map<number, { spec: ChannelSpec; reassembler: Reassembler }>();
  private closed = false;

  /** @internal Use `connectToServer`, or `SocketConnection.open`. */
  constructor(
    private readonly ws: WebSocket,
    specs: readonly ChannelSpec[],
    private readonly limits: ConnectionLimits,
  ) {
    for (const spec of specs) {
      this.specsByName.set(spec.name, spec);
      this.reassemblers.set(spec.id, { spec, reassembler: new Reassembler(limits.maxMessageBytes) });
    }
    ws.binaryType = "arraybuffer";
    ws.onmessage = (event: MessageEvent) => this.received(event.data);
    ws.onclose = (event: CloseEvent) => {
      if (event.code === CLOSE_ABNORMAL) this.end("connection_lost");
      else this.end("disconnected", event.reason || undefined);
    };
  }

  /**
   * Opens the WebSocket at `url`; resolves once it is open. Rejects with `connection_failed`
   * (unreachable, or refused: a full server answers the upgrade with 503, which browsers do not
   * show to pages).
   */
  static open(
    url: string,
    specs: readonly ChannelSpec[],
    limits: ConnectionLimits,
    WebSocketImpl: typeof WebSocket = WebSocket,
  ): Promise<SocketConnection> {
    return new Promise((done, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocketImpl(url);
      } catch (error) {
        reject(new SwitchboardError("connection_failed", `cannot open ${url}: ${(error as Error).message}`));
        return;
      }
      const timer = setTimeout(() => {
        ws.close();
        reject(new SwitchboardError("connection_failed", `the WebSocket to ${url} did not open in ${limits.connectTimeoutMs} ms`));
      }, limits.connectTimeoutMs);
      // The close event that follows an error says what happened.
      ws.onerror = () => {};
      ws.onopen = () => {
        clearTimeout(timer);
        done(new SocketConnection(ws, specs, limits));
      };
      ws.onclose = (event: CloseEvent) => {
        clearTimeout(timer);
        const closed = new SwitchboardError("connection_failed", `the WebSocket to ${url} was refused or closed before it opened (${event.code})`);
        // A refused upgrade (a token, a full server) closes with 1006: ask the server why.
        if (event.code !== 1006) reject(closed);
        else void whyRefused(url).then((refusal) => reject(refusal ?? closed));
      };
    });
  }

  /** Calls `handler` for every event of `type`; returns a function that unsubscribes it. */
  on<K extends keyof ConnectionEvents>(type: K, handler: (event: ConnectionEvents[K]) => void): () => void {
    return this.events.on(type, handler);
  }

  /** Removes a handler added with `on`. */
  off<K extends keyof ConnectionEvents>(type: K, handler: (event: ConnectionEvents[K]) => void): void {
    this.events.off(type, handler);
  }

  /** Whether the socket is open. */
  get connected(): boolean {
    return !this.closed && this.ws.readyState === 1;
  }

  /** The declared channels. */
  get channels(): string[] {
    return [...this.specsByName.keys()];
  }

  /** A channel's properties: over a WebSocket, always ordered and reliable. */
  channelInfo(name: string): ChannelInfo | undefined {
    const spec = this.specsByName.get(name);
    if (spec === undefined) return undefined;
    return { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: spec.id };
  }

  /** Sends one message; throws `SwitchboardError` when it cannot be sent. */
  send(channelName: string, payload: Payload): void {
    const spec = this.specsByName.get(channelName);
    if (spec === undefined) throw new SwitchboardError("unknown_channel", `no channel named ${channelName}`);
    if (!this.connected) throw new SwitchboardError("peer_not_connected", "the connection to the server is closed");
    const frames = encodeFrames(payload, {
      frameBytes: this.limits.frameBytes,
      chunked: spec.chunked,
      maxMessageBytes: this.limits.maxMessageBytes,
    });
    const size = frames.reduce((sum, frame) => sum + frame.byteLength + 1, 0);
    if (this.ws.bufferedAmount + size > this.limits.maxBufferedBytes) {
      throw new SwitchboardError("send_queue_full", `over maxBufferedBytes (${this.limits.maxBufferedBytes}) waiting for the server`);
    }
    for (const frame of frames) this.ws.send(socketMessage(spec.id, frame) as Uint8Array<ArrayBuffer>);
  }

  /**
   * Closes the connection (no `close` event follows). With a `reason`, the server is told first
   * (a goodbye frame) and reports `goodbye: <reason>`.
   */
  close(reason?: string): void {
    if (reason !== undefined && this.connected) {
      const reliable = [...this.specsByName.values()].find((spec) => spec.chunked);
      if (reliable !== undefined) this.ws.send(socketMessage(reliable.id, goodbyeFrame(reason)) as Uint8Array<ArrayBuffer>);
    }
    this.shut();
    this.events.clear();
  }

  private shut(): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    this.ws.close(CLOSE_NORMAL);
  }

  private end(reason: string, detail?: string): void {
    if (this.closed) return;
    this.shut();
    this.events.emit("close", detail === undefined ? { reason } : { reason, detail });
    this.events.clear();
  }

  private received(data: unknown): void {
    if (this.closed) return;
    if (!(data instanceof ArrayBuffer) || data.byteLength === 0) {
      this.events.emit("error", { error: new SwitchboardError("bad_frame", "the server sent a message that is not a channel frame") });
      return;
    }
    const bytes = new Uint8Array(data);
    const channel = this.reassemblers.get(bytes[0]);
    if (channel === undefined) {
      this.events.emit("error", { error: new SwitchboardError("bad_frame", `the server sent a frame for unknown channel ${bytes[0]}`) });
      return;
    }
    let message: Received | Goodbye | null;
    try {
      message = channel.reassembler.push(bytes.subarray(1));
    } catch (error) {
      this.events.emit("error", { error: error as SwitchboardError });
      return;
    }
    if (message instanceof Goodbye) this.end("goodbye", message.reason);
    else if (message !== null) this.events.emit("message", { channel: channel.spec.name, data: message });
  }
}
