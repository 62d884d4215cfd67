/**
 * One WebRTC connection to another peer (of a room, or paired by compact codes): a thin shell
 * that runs the `Negotiation` state machine against a real `RTCPeerConnection`, creates the
 * pre-negotiated channels, frames and reassembles messages, and respects the data channels'
 * send buffers.
 */
import { type ChannelSpec, dataChannelInit } from "./channels.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import { Goodbye, encodeFrames, goodbyeFrame, type Payload, type Received, Reassembler } from "./framing.js";
import { Negotiation, type Role, type Signal, type Step } from "./negotiation.js";

/** Limits and timeouts of a connection (see `RoomOptions`). */
export interface ConnectionLimits {
  frameBytes: number;
  maxMessageBytes: number;
  maxBufferedBytes: number;
  bufferedHighBytes: number;
  connectTimeoutMs: number;
  disconnectTimeoutMs: number;
  maxQueuedCandidates: number;
}

/** A channel's properties as they were negotiated. */
export interface ChannelInfo {
  ordered: boolean;
  maxRetransmits: number | null;
  maxPacketLifeTime: number | null;
  id: number | null;
}

/** Events of a connection, by name. */
export interface ConnectionEvents {
  /** Every channel is open: `send` works. */
  open: Record<string, never>;
  /** `RTCPeerConnection.connectionState` changed. */
  state: { state: RTCPeerConnectionState };
  /** A whole message on a channel: text as `string`, binary as `Uint8Array`. */
  message: { channel: string; data: Received };
  /** Something went wrong that does not end the connection. */
  error: { error: SwitchboardError };
  /**
   * The connection is over, reported once (not after `close()`): `disconnected` (the other
   * side's channels closed), `connection_failed`, `connection_lost`, `channel_mismatch`, or
   * `goodbye` (the other side closed on purpose: `detail` is its reason, e.g. a server's kick).
   */
  close: { reason: string; detail?: string };
}

interface Channel {
  readonly spec: ChannelSpec;
  readonly dc: RTCDataChannel;
  readonly reassembler: Reassembler;
  /** Frames waiting for the browser's send buffer to drain. */
  readonly queue: Uint8Array[];
  queuedBytes: number;
}

/** A WebRTC connection to one peer with the declared channels. */
export class Connection {
  private readonly events = new Emitter<ConnectionEvents>();
  private readonly pc: RTCPeerConnection;
  private readonly channelsByName = new Map<string, Channel>();
  private readonly negotiation: Negotiation;
  private chain: Promise<void> = Promise.resolve();
  private openChannels = 0;
  private isOpen = false;
  private closed = false;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private disconnectTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @internal Created by a room or a pairing. `signal` carries negotiation payloads to the other
   * peer; call `start()` to begin.
   */
  constructor(
    role: Role,
    specs: readonly ChannelSpec[],
    private readonly fingerprint: string,
    rtc: RTCConfiguration,
    private readonly options: ConnectionLimits,
    private readonly signal: (data: Signal) => void,
  ) {
    this.negotiation = new Negotiation(role, this.fingerprint, options.maxQueuedCandidates);
    this.pc = new RTCPeerConnection(rtc);
    for (const spec of specs) this.addChannel(spec);
    this.pc.onicecandidate = (event) => {
      if (this.closed) return;
      this.signal({ type: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
    };
    this.pc.onconnectionstatechange = () => this.connectionStateChanged();
  }

  /** Calls `handler` for every event of `type`; returns a function that unsubscribes it. */
  on<K extends keyof ConnectionEvents>(type: K, handler: (event: ConnectionEvents[K]) => void): () => void {
    return this.events.on(type, handler);
  }

  /** Removes a handler added with `on`. */
  off<K extends keyof ConnectionEvents>(type: K, handler: (event: ConnectionEvents[K]) => void): void {
    this.events.off(type, handler);
  }

  /** @internal Starts negotiating (the offerer sends its offer) and the connect timeout. */
  start(): void {
    this.connectTimer = setTimeout(() => this.end("connection_failed"), this.options.connectTimeoutMs);
    if (this.negotiation.role === "offerer") {
      this.enqueue(async () => {
        const offer = await this.pc.createOffer();
        await this.pc.setLocalDescription(offer);
        if (this.closed) return;
        this.negotiation.offerSent();
        this.signal({ type: "offer", sdp: offer.sdp ?? "", channels: this.fingerprint });
      });
    }
  }

  /** Whether every channel is open. */
  get connected(): boolean {
    return this.isOpen && !this.closed;
  }

  /** Negotiated properties of a channel, as the browser reports them. */
  channelInfo(name: string): ChannelInfo | undefined {
    const dc = this.channelsByName.get(name)?.dc;
    if (dc === undefined) return undefined;
    return { ordered: dc.ordered, maxRetransmits: dc.maxRetransmits, maxPacketLifeTime: dc.maxPacketLifeTime, id: dc.id };
  }

  /** How this connection travels (a server peer's fallback is `websocket`). */
  get transport(): "webrtc" {
    return "webrtc";
  }

  /** @internal Uses these ICE servers from now on (fresh TURN credentials for ICE restarts and consent). */
  setIceServers(iceServers: RTCIceServer[]): void {
    if (this.closed) return;
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch {
      // A configuration the browser will not change now: the old credentials stay in use.
    }
  }

  /** The underlying `RTCPeerConnection` (for `getStats()` and debugging). */
  get rtc(): RTCPeerConnection {
    return this.pc;
  }

  /** The declared channels. */
  get channels(): string[] {
    return [...this.channelsByName.keys()];
  }

  /** @internal Handles a negotiation payload from the other peer. */
  receive(data: unknown): void {
    if (this.closed) return;
    let steps: Step[];
    try {
      steps = this.negotiation.receive(data);
    } catch (error) {
      this.events.emit("error", { error: error as SwitchboardError });
      if ((error as SwitchboardError).code === "channel_mismatch") this.end("channel_mismatch");
      return;
    }
    for (const step of steps) this.enqueue(() => this.apply(step));
  }

  /** Sends one message; throws `SwitchboardError` when it cannot be sent. */
  send(channelName: string, payload: Payload): void {
    const channel = this.channelsByName.get(channelName);
    if (channel === undefined) throw new SwitchboardError("unknown_channel", `no channel named ${channelName}`);
    if (!this.connected || channel.dc.readyState !== "open") {
      throw new SwitchboardError("peer_not_connected", "the data channels to this peer are not open");
    }
    const frames = encodeFrames(payload, {
      frameBytes: this.options.frameBytes,
      chunked: channel.spec.chunked,
      maxMessageBytes: this.options.maxMessageBytes,
    });
    const size = frames.reduce((sum, frame) => sum + frame.byteLength, 0);
    if (channel.queuedBytes + size > this.options.maxBufferedBytes) {
      throw new SwitchboardError(
        "send_queue_full",
        `over maxBufferedBytes (${this.options.maxBufferedBytes}) waiting for this peer on ${channelName}`,
      );
    }
    for (const frame of frames) channel.queue.push(frame);
    channel.queuedBytes += size;
    this.drain(channel);
  }

  /**
   * Closes the connection (no `close` event follows). With a `reason`, the other side is told
   * first (a goodbye frame on the first ordered reliable channel) and sees `goodbye` with it.
   */
  close(reason?: string): void {
    if (reason !== undefined && this.connected) {
      const channel = [...this.channelsByName.values()].find((c) => c.spec.chunked && c.dc.readyState === "open");
      try {
        channel?.dc.send(goodbyeFrame(reason) as Uint8Array<ArrayBuffer>);
      } catch {
        // closing anyway
      }
    }
    this.shut();
    this.events.clear();
  }

  private shut(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.disconnectTimer);
    for (const channel of this.channelsByName.values()) {
      channel.dc.onclose = null;
      channel.dc.onmessage = null;
      channel.dc.close();
    }
    this.pc.onconnectionstatechange = null;
    this.pc.onicecandidate = null;
    this.pc.close();
  }

  private end(reason: string, detail?: string): void {
    if (this.closed) return;
    this.shut();
    this.events.emit("close", detail === undefined ? { reason } : { reason, detail });
    this.events.clear();
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      if (this.closed) return;
      this.events.emit("error", { error: new SwitchboardError("webrtc_error", (error as Error)?.message ?? String(error)) });
    });
  }

  private async apply(step: Step): Promise<void> {
    if (this.closed) return;
    switch (step.kind) {
      case "accept-offer": {
        await this.pc.setRemoteDescription({ type: "offer", sdp: step.sdp });
        this.released();
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
        if (!this.closed) this.signal({ type: "answer", sdp: answer.sdp ?? "" });
        return;
      }
      case "accept-answer":
        await this.pc.setRemoteDescription({ type: "answer", sdp: step.sdp });
        this.released();
        return;
      case "add-candidate":
        await this.pc.addIceCandidate(step.candidate ?? undefined);
        return;
    }
  }

  /** Queues the candidates that waited for the remote description. */
  private released(): void {
    for (const step of this.negotiation.remoteApplied()) this.enqueue(() => this.apply(step));
  }

  private addChannel(spec: ChannelSpec): void {
    const dc = this.pc.createDataChannel(spec.name, dataChannelInit(spec));
    dc.binaryType = "arraybuffer";
    dc.bufferedAmountLowThreshold = Math.floor(this.options.bufferedHighBytes / 2);
    const channel: Channel = { spec, dc, reassembler: new Reassembler(this.options.maxMessageBytes), queue: [], queuedBytes: 0 };
    this.channelsByName.set(spec.name, channel);
    dc.onopen = () => {
      this.openChannels += 1;
      if (this.openChannels === this.channelsByName.size && !this.isOpen && !this.closed) {
        this.isOpen = true;
        clearTimeout(this.connectTimer);
        this.events.emit("open", {});
      }
    };
    dc.onclose = () => this.end("disconnected");
    dc.onbufferedamountlow = () => this.drain(channel);
    dc.onmessage = (event: MessageEvent) => this.received(channel, event.data);
  }

  private received(channel: Channel, data: unknown): void {
    if (this.closed) return;
    if (typeof data === "string") {
      // A peer that does not frame its messages (not a Switchboard client): deliver as text.
      this.events.emit("message", { channel: channel.spec.name, data });
      return;
    }
    if (!(data instanceof ArrayBuffer)) return;
    let message: Received | Goodbye | null;
    try {
      message = channel.reassembler.push(new Uint8Array(data));
    } catch (error) {
      this.events.emit("error", { error: error as SwitchboardError });
      return;
    }
    if (message instanceof Goodbye) this.end("goodbye", message.reason);
    else if (message !== null) this.events.emit("message", { channel: channel.spec.name, data: message });
  }

  private drain(channel: Channel): void {
    const { dc, queue } = channel;
    while (queue.length > 0 && dc.readyState === "open" && dc.bufferedAmount < this.options.bufferedHighBytes) {
      const frame = queue.shift() as Uint8Array;
      channel.queuedBytes -= frame.byteLength;
      try {
        dc.send(frame as Uint8Array<ArrayBuffer>);
      } catch (error) {
        this.events.emit("error", { error: new SwitchboardError("webrtc_error", `send failed: ${(error as Error).message}`) });
        queue.length = 0;
        channel.queuedBytes = 0;
        return;
      }
    }
  }

  private connectionStateChanged(): void {
    if (this.closed) return;
    const state = this.pc.connectionState;
    this.events.emit("state", { state });
    clearTimeout(this.disconnectTimer);
    if (state === "failed") this.end("connection_failed");
    else if (state === "closed") this.end("disconnected");
    else if (state === "disconnected") {
      this.disconnectTimer = setTimeout(() => this.end("connection_lost"), this.options.disconnectTimeoutMs);
    }
  }
}
