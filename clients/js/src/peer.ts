/**
 * One WebRTC connection to another peer of the room: a thin shell that runs the `Negotiation`
 * state machine against a real `RTCPeerConnection`, creates the pre-negotiated channels, frames
 * and reassembles messages, and respects the data channels' send buffers.
 */
import { type ChannelSpec, dataChannelInit } from "./channels.js";
import { SwitchboardError } from "./errors.js";
import { encodeFrames, type Payload, type Received, Reassembler } from "./framing.js";
import { Negotiation, type Role, type Signal, type Step } from "./negotiation.js";

/** Limits and timeouts of a peer connection (see `RoomOptions`). */
export interface LinkOptions {
  frameBytes: number;
  maxMessageBytes: number;
  maxBufferedBytes: number;
  bufferedHighBytes: number;
  connectTimeoutMs: number;
  disconnectTimeoutMs: number;
  maxQueuedCandidates: number;
}

/** What a link reports to its room. */
export interface LinkHooks {
  /** Send this payload to the other peer through the hub. */
  signal(data: Signal): void;
  /** Every channel is open. */
  open(): void;
  /** `RTCPeerConnection.connectionState` changed. */
  state(state: RTCPeerConnectionState): void;
  /** A whole application message arrived. */
  message(channel: string, data: Received): void;
  /** Something went wrong that does not end the connection. */
  error(error: SwitchboardError): void;
  /** The connection is over (reported once); the link has closed itself. */
  gone(reason: string): void;
}

interface Channel {
  readonly spec: ChannelSpec;
  readonly dc: RTCDataChannel;
  readonly reassembler: Reassembler;
  /** Frames waiting for the browser's send buffer to drain. */
  readonly queue: Uint8Array[];
  queuedBytes: number;
}

/** A connection to one peer. */
export class PeerLink {
  private readonly pc: RTCPeerConnection;
  private readonly channels = new Map<string, Channel>();
  private readonly negotiation: Negotiation;
  private chain: Promise<void> = Promise.resolve();
  private openChannels = 0;
  private isOpen = false;
  private closed = false;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private disconnectTimer: ReturnType<typeof setTimeout> | undefined;

  /** Creates the connection and its channels; call `start()` to begin. */
  constructor(
    role: Role,
    specs: readonly ChannelSpec[],
    private readonly fingerprint: string,
    rtc: RTCConfiguration,
    private readonly options: LinkOptions,
    private readonly hooks: LinkHooks,
  ) {
    this.negotiation = new Negotiation(role, this.fingerprint, options.maxQueuedCandidates);
    this.pc = new RTCPeerConnection(rtc);
    for (const spec of specs) this.addChannel(spec);
    this.pc.onicecandidate = (event) => {
      if (this.closed) return;
      this.hooks.signal({ type: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
    };
    this.pc.onconnectionstatechange = () => this.connectionStateChanged();
  }

  /** Starts negotiating (the offerer sends its offer) and the connect timeout. */
  start(): void {
    this.connectTimer = setTimeout(() => this.end("connection_failed"), this.options.connectTimeoutMs);
    if (this.negotiation.role === "offerer") {
      this.enqueue(async () => {
        const offer = await this.pc.createOffer();
        await this.pc.setLocalDescription(offer);
        if (this.closed) return;
        this.negotiation.offerSent();
        this.hooks.signal({ type: "offer", sdp: offer.sdp ?? "", channels: this.fingerprint });
      });
    }
  }

  /** Whether every channel is open. */
  get connected(): boolean {
    return this.isOpen && !this.closed;
  }

  /** Negotiated properties of a channel, as the browser reports them. */
  channelInfo(name: string): { ordered: boolean; maxRetransmits: number | null; maxPacketLifeTime: number | null; id: number | null } | undefined {
    const dc = this.channels.get(name)?.dc;
    if (dc === undefined) return undefined;
    return { ordered: dc.ordered, maxRetransmits: dc.maxRetransmits, maxPacketLifeTime: dc.maxPacketLifeTime, id: dc.id };
  }

  /** The underlying connection (for stats and debugging). */
  get connection(): RTCPeerConnection {
    return this.pc;
  }

  /** Handles a signaling payload from the other peer. */
  receive(data: unknown): void {
    if (this.closed) return;
    let steps: Step[];
    try {
      steps = this.negotiation.receive(data);
    } catch (error) {
      this.hooks.error(error as SwitchboardError);
      if ((error as SwitchboardError).code === "channel_mismatch") this.end("channel_mismatch");
      return;
    }
    for (const step of steps) this.enqueue(() => this.apply(step));
  }

  /** Sends one message; throws `SwitchboardError` when it cannot be sent. */
  send(channelName: string, payload: Payload): void {
    const channel = this.channels.get(channelName);
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

  /** Closes the connection without reporting it as gone. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.disconnectTimer);
    for (const channel of this.channels.values()) {
      channel.dc.onclose = null;
      channel.dc.onmessage = null;
      channel.dc.close();
    }
    this.pc.onconnectionstatechange = null;
    this.pc.onicecandidate = null;
    this.pc.close();
  }

  private end(reason: string): void {
    if (this.closed) return;
    this.close();
    this.hooks.gone(reason);
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      if (this.closed) return;
      this.hooks.error(new SwitchboardError("webrtc_error", (error as Error)?.message ?? String(error)));
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
        if (!this.closed) this.hooks.signal({ type: "answer", sdp: answer.sdp ?? "" });
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
    this.channels.set(spec.name, channel);
    dc.onopen = () => {
      this.openChannels += 1;
      if (this.openChannels === this.channels.size && !this.isOpen && !this.closed) {
        this.isOpen = true;
        clearTimeout(this.connectTimer);
        this.hooks.open();
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
      this.hooks.message(channel.spec.name, data);
      return;
    }
    if (!(data instanceof ArrayBuffer)) return;
    let message: Received | null;
    try {
      message = channel.reassembler.push(new Uint8Array(data));
    } catch (error) {
      this.hooks.error(error as SwitchboardError);
      return;
    }
    if (message !== null) this.hooks.message(channel.spec.name, message);
  }

  private drain(channel: Channel): void {
    const { dc, queue } = channel;
    while (queue.length > 0 && dc.readyState === "open" && dc.bufferedAmount < this.options.bufferedHighBytes) {
      const frame = queue.shift() as Uint8Array;
      channel.queuedBytes -= frame.byteLength;
      try {
        dc.send(frame as Uint8Array<ArrayBuffer>);
      } catch (error) {
        this.hooks.error(new SwitchboardError("webrtc_error", `send failed: ${(error as Error).message}`));
        queue.length = 0;
        channel.queuedBytes = 0;
        return;
      }
    }
  }

  private connectionStateChanged(): void {
    if (this.closed) return;
    const state = this.pc.connectionState;
    this.hooks.state(state);
    clearTimeout(this.disconnectTimer);
    if (state === "failed") this.end("connection_failed");
    else if (state === "closed") this.end("disconnected");
    else if (state === "disconnected") {
      this.disconnectTimer = setTimeout(() => this.end("connection_lost"), this.options.disconnectTimeoutMs);
    }
  }
}
