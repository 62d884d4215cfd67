/**
 * Pairing without a server: one device makes an offer code (text, link or QR code), the other
 * answers with a code, and the first accepts it. Codes are compact SDP (`compact.ts`); ICE is
 * not trickled, so each code carries every candidate gathered. The result is a `Connection`,
 * the same object and channels a room peer has.
 */
import qrcode from "qrcode-generator";
import { DEFAULT_CHANNELS, channelSpecs, channelsFingerprint } from "./channels.js";
import { type ConnectionOptions, DEFAULTS } from "./options.js";
import {
  MAX_CANDIDATES, buildSdp, decodeCode, encodeDescription, parseSdp, toQrText, toUrlText,
} from "./compact.js";
import { Connection, type ConnectionLimits } from "./connection.js";
import { SwitchboardError } from "./errors.js";
import type { Signal } from "./negotiation.js";

/**
 * Options of `createPairingOffer`, `answerPairingOffer` and `connectToServer`. Both sides must
 * declare the same channels (the code does not carry them).
 */
export interface PairingOptions extends ConnectionOptions {
  /** ICE servers (default none: no server at all, which works on one network). */
  iceServers?: RTCIceServer[];
  /** Longest wait for ICE gathering before the code is made with what was found (default 3000 ms). */
  gatherTimeoutMs?: number;
  /** How long the connection may take to open, the human carrying codes included (default 300000 ms). */
  connectTimeoutMs?: number;
}

/** Defaults of the pairing options (the shared connection limits as in `DEFAULTS`). */
export const PAIRING_DEFAULTS = Object.freeze({
  gatherTimeoutMs: 3_000,
  connectTimeoutMs: 300_000,
  disconnectTimeoutMs: DEFAULTS.disconnectTimeoutMs,
  frameBytes: DEFAULTS.frameBytes,
  maxMessageBytes: DEFAULTS.maxMessageBytes,
  maxBufferedBytes: DEFAULTS.maxBufferedBytes,
  bufferedHighBytes: DEFAULTS.bufferedHighBytes,
});

/** A code to hand to the other device. */
export class PairingCode {
  /** Base64url text: for links (`#code`) and copy-paste. */
  readonly code: string;
  /** Base45 text: the smallest QR code (alphanumeric mode). */
  readonly qrText: string;
  /** Size of the compact form in bytes. */
  readonly bytes: number;

  /** @internal */
  constructor(compact: Uint8Array) {
    this.code = toUrlText(compact);
    this.qrText = toQrText(compact);
    this.bytes = compact.length;
  }

  /** A link that opens `page` with this code in the fragment (the fragment never reaches a server). */
  link(page: string): string {
    return `${page.split("#")[0]}#${this.code}`;
  }

  /**
   * An SVG QR code: of the bare code (alphanumeric mode), or of `link(page)` when `page` is given
   * (a phone camera opens it). Error correction level L.
   */
  qrSvg(options: { page?: string; cellSize?: number; margin?: number } = {}): string {
    const qr = qrcode(0, "L");
    if (options.page === undefined) qr.addData(this.qrText, "Alphanumeric");
    else qr.addData(this.link(options.page), "Byte");
    qr.make();
    return qr.createSvgTag({ cellSize: options.cellSize ?? 4, margin: options.margin ?? 4, scalable: true });
  }
}

/** Validates pairing options and fills in defaults; throws `invalid_options`. */
export function resolvePairingOptions(options: PairingOptions): { limits: ConnectionLimits; gatherTimeoutMs: number } {
  const merged: Record<keyof typeof PAIRING_DEFAULTS, number> = { ...PAIRING_DEFAULTS };
  for (const key of Object.keys(PAIRING_DEFAULTS) as (keyof typeof PAIRING_DEFAULTS)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new SwitchboardError("invalid_options", `${key} must be a positive number`);
    }
    merged[key] = value;
  }
  const { gatherTimeoutMs, ...rest } = merged;
  return { gatherTimeoutMs, limits: { ...rest, maxQueuedCandidates: 0 } };
}

function gathered(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  return new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        done();
      }
    });
  });
}

/**
 * Sets up a connection without trickle ICE: its local description, once gathering is done (or
 * `gatherTimeoutMs` passed), carries every candidate.
 */
export async function describe(
  role: "offerer" | "answerer",
  options: PairingOptions,
  remoteOffer?: string,
): Promise<{ connection: Connection; sdp: string }> {
  const { limits, gatherTimeoutMs } = resolvePairingOptions(options);
  const specs = channelSpecs(options.channels ?? DEFAULT_CHANNELS);
  const fingerprint = channelsFingerprint(specs);
  let described: (sdp: string) => void = () => {};
  const local = new Promise<string>((done) => (described = done));
  const rtc: RTCConfiguration = { iceServers: options.iceServers ?? [] };
  if (options.iceTransportPolicy !== undefined) rtc.iceTransportPolicy = options.iceTransportPolicy;
  const connection = new Connection(role, specs, fingerprint, rtc, limits, (signal: Signal) => {
    if (signal.type === "offer" || signal.type === "answer") described(signal.sdp);
  });
  const failed = new Promise<never>((_, reject) =>
    connection.on("error", ({ error }) => reject(error)),
  );
  failed.catch(() => {}); // Only raced below; later errors are the connection's events.
  connection.start();
  if (remoteOffer !== undefined) connection.receive({ type: "offer", sdp: remoteOffer, channels: fingerprint });
  try {
    await Promise.race([local, failed]);
    await gathered(connection.rtc, gatherTimeoutMs);
    return { connection, sdp: connection.rtc.localDescription?.sdp ?? "" };
  } catch (error) {
    connection.close();
    throw error instanceof SwitchboardError ? error : new SwitchboardError("webrtc_error", String((error as Error)?.message ?? error));
  }
}

/** The compact code of a complete local description (at most `MAX_CANDIDATES` candidates). */
function compactOf(sdp: string): Uint8Array {
  const description = parseSdp(sdp);
  description.candidates = description.candidates.slice(0, MAX_CANDIDATES);
  return encodeDescription(description);
}

/** Resolves when the channels open; rejects when the connection fails or the browser refuses the remote SDP. */
export function opened(connection: Connection): Promise<Connection> {
  return new Promise((done, reject) => {
    if (connection.connected) return done(connection);
    connection.on("open", () => done(connection));
    connection.on("close", ({ reason }) => reject(new SwitchboardError("connection_failed", `the connection did not open: ${reason}`)));
    connection.on("error", ({ error }) => {
      if (error.code !== "webrtc_error" || connection.connected) return;
      connection.close();
      reject(error);
    });
  });
}

function readCode(code: string, expected: "offer" | "answer") {
  const description = decodeCode(code);
  if (description.type !== expected) {
    throw new SwitchboardError("invalid_code", `expected an ${expected} code, got an ${description.type}`, "invalid");
  }
  return buildSdp(description);
}

/** An offer waiting for the other device's answer. */
export class PairingOffer extends PairingCode {
  /** @internal */
  constructor(
    compact: Uint8Array,
    /** The connection (open once `accept` resolves). */
    readonly connection: Connection,
  ) {
    super(compact);
  }

  /**
   * Takes the answer code (either text form, or a link) and resolves when the channels are open.
   * Rejects with `invalid_code` for a bad code, `connection_failed` when it cannot connect.
   */
  accept(answer: string): Promise<Connection> {
    let sdp: string;
    try {
      sdp = readCode(answer, "answer");
    } catch (error) {
      return Promise.reject(error);
    }
    const open = opened(this.connection);
    this.connection.receive({ type: "answer", sdp });
    return open;
  }
}

/** Creates an offer code. Resolves once ICE gathering is done (or `gatherTimeoutMs` passed). */
export async function createPairingOffer(options: PairingOptions = {}): Promise<PairingOffer> {
  const { connection, sdp } = await describe("offerer", options);
  return new PairingOffer(compactOf(sdp), connection);
}

/**
 * Answers an offer code (either text form, or a link): resolves to the answer code for the
 * other device, and the connection that opens once the other device accepts it.
 */
export async function answerPairingOffer(
  offer: string,
  options: PairingOptions = {},
): Promise<{ answer: PairingCode; connection: Promise<Connection> }> {
  const sdp = readCode(offer, "offer");
  const local = await describe("answerer", options, sdp);
  const compact = compactOf(local.sdp);
  const connection = local.connection;
  const open = opened(connection);
  open.catch(() => {}); // The caller may only look at the answer first; the promise still rejects for them.
  return { answer: new PairingCode(compact), connection: open };
}
