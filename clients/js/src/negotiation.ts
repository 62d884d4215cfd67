/**
 * Offer/answer negotiation for one peer connection of a full mesh, as a pure state machine: it
 * validates what the other peer signals and says what to apply, in which order. The browser
 * calls (`setRemoteDescription`, `addIceCandidate`) are made by the caller.
 *
 * Roles avoid glare: a peer already in the room offers to each newcomer, and the newcomer
 * answers. ICE candidates are trickled; those that arrive before the remote description is
 * applied are kept and released once it is.
 */
import { SwitchboardError } from "./errors.js";

/** Who sends the offer on this connection. */
export type Role = "offerer" | "answerer";

/** A signaling payload exchanged between two peers (inside the hub's `signal` message). */
export type Signal =
  | { type: "offer"; sdp: string; channels: string }
  | { type: "answer"; sdp: string }
  | { type: "candidate"; candidate: RTCIceCandidateInit | null };

/** What the caller must do next, in order. */
export type Step =
  | { kind: "accept-offer"; sdp: string }
  | { kind: "accept-answer"; sdp: string }
  | { kind: "add-candidate"; candidate: RTCIceCandidateInit | null };

type State = "waiting-offer" | "creating-offer" | "offer-sent" | "applying" | "stable";

const MAX_SDP_BYTES = 64 * 1024;

function badSignal(message: string): SwitchboardError {
  return new SwitchboardError("bad_signal", message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates a signaling payload from another peer; throws `bad_signal` when it is not one. */
export function parseSignal(data: unknown): Signal {
  if (!isRecord(data) || typeof data.type !== "string") throw badSignal("signal is not an object with a type");
  switch (data.type) {
    case "offer":
    case "answer": {
      if (typeof data.sdp !== "string" || data.sdp.length === 0 || data.sdp.length > MAX_SDP_BYTES) {
        throw badSignal(`${data.type}: missing or oversized sdp`);
      }
      if (data.type === "answer") return { type: "answer", sdp: data.sdp };
      if (typeof data.channels !== "string") throw badSignal("offer: missing channels");
      return { type: "offer", sdp: data.sdp, channels: data.channels };
    }
    case "candidate": {
      const c = data.candidate;
      if (c === null || c === undefined) return { type: "candidate", candidate: null };
      if (!isRecord(c) || typeof c.candidate !== "string") throw badSignal("candidate: not an ICE candidate");
      const candidate: RTCIceCandidateInit = { candidate: c.candidate };
      if (typeof c.sdpMid === "string") candidate.sdpMid = c.sdpMid;
      if (typeof c.sdpMLineIndex === "number") candidate.sdpMLineIndex = c.sdpMLineIndex;
      if (typeof c.usernameFragment === "string") candidate.usernameFragment = c.usernameFragment;
      if (candidate.sdpMid === undefined && candidate.sdpMLineIndex === undefined) {
        candidate.sdpMLineIndex = 0;
      }
      return { type: "candidate", candidate };
    }
    default:
      throw badSignal(`unknown signal type ${JSON.stringify(data.type)}`);
  }
}

/** Negotiation state of one connection. */
export class Negotiation {
  private state: State;
  private queued: (RTCIceCandidateInit | null)[] = [];

  /**
   * `channels` is this peer's channel fingerprint (an offer with another one is refused);
   * `maxQueuedCandidates` bounds what an early or hostile peer can make us keep.
   */
  constructor(
    readonly role: Role,
    private readonly channels: string,
    private readonly maxQueuedCandidates: number,
  ) {
    this.state = role === "offerer" ? "creating-offer" : "waiting-offer";
  }

  /** The offer went out: the answer may come. */
  offerSent(): void {
    if (this.state === "creating-offer") this.state = "offer-sent";
  }

  /** Whether both descriptions are applied. */
  get stable(): boolean {
    return this.state === "stable";
  }

  /** Takes a payload from the other peer; throws `bad_signal` / `channel_mismatch` when refused. */
  receive(data: unknown): Step[] {
    const signal = parseSignal(data);
    switch (signal.type) {
      case "offer":
        if (this.role !== "answerer" || this.state !== "waiting-offer") {
          throw badSignal("unexpected offer");
        }
        if (signal.channels !== this.channels) {
          throw new SwitchboardError(
            "channel_mismatch",
            `the peer declared channels [${signal.channels}], we declared [${this.channels}]`,
          );
        }
        this.state = "applying";
        return [{ kind: "accept-offer", sdp: signal.sdp }];
      case "answer":
        if (this.role !== "offerer" || this.state !== "offer-sent") throw badSignal("unexpected answer");
        this.state = "applying";
        return [{ kind: "accept-answer", sdp: signal.sdp }];
      case "candidate":
        if (this.state === "stable") return [{ kind: "add-candidate", candidate: signal.candidate }];
        if (this.queued.length >= this.maxQueuedCandidates) {
          throw badSignal(`more than ${this.maxQueuedCandidates} candidates before the description`);
        }
        this.queued.push(signal.candidate);
        return [];
    }
  }

  /** The remote description is applied: returns the candidates that were waiting for it. */
  remoteApplied(): Step[] {
    this.state = "stable";
    const steps = this.queued.map((candidate): Step => ({ kind: "add-candidate", candidate }));
    this.queued = [];
    return steps;
  }
}
