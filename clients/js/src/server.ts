/**
 * Client/server mode: connect to a Switchboard server peer (a Rust game server speaking WebRTC)
 * with one HTTP request. The browser offers (every candidate gathered, or mDNS names), the server
 * answers with its candidates; then the same `Connection` object and channels as a room peer.
 * When WebRTC cannot connect (UDP blocked, or no WebRTC in this browser), the client falls back
 * to the server's WebSocket (`<url>/ws`) with the same events and `send`.
 */
import { DEFAULT_CHANNELS, channelSpecs } from "./channels.js";
import type { Connection } from "./connection.js";
import { SwitchboardError } from "./errors.js";
import { type PairingOptions, describe, opened, resolvePairingOptions } from "./pairing.js";
import { SocketConnection } from "./socket-connection.js";

/** A connection to a server peer: WebRTC data channels, or the WebSocket fallback (see `transport`). */
export type ServerConnection = Connection | SocketConnection;

/** Options of `connectToServer`. */
export interface ServerOptions extends PairingOptions {
  /** Fall back to the server's WebSocket when WebRTC does not connect (default true). */
  fallback?: boolean;
  /** How long WebRTC gets to open before the fallback is used (default 5000 ms). */
  webrtcTimeoutMs?: number;
  /** The fallback's WebSocket URL (default: `url` + `/ws`, as `ws:` or `wss:`). */
  fallbackUrl?: string;
  /** WebSocket implementation for the fallback (default: the global one). */
  WebSocket?: typeof WebSocket;
  /** An auth token (the hub's JWT) when the server peer requires one: `Authorization: Bearer` on `POST`, `?token=` on the fallback. */
  token?: string;
}

/** Defaults of the options only `connectToServer` has. */
export const SERVER_DEFAULTS: Readonly<{ webrtcTimeoutMs: number; gatherTimeoutMs: number; connectTimeoutMs: number }> = Object.freeze({
  webrtcTimeoutMs: 5_000,
  gatherTimeoutMs: 1_000,
  connectTimeoutMs: 15_000,
});

/**
 * Connects to a server peer: `url` is its connect endpoint (default `/connect` on this page's
 * server). Resolves when the connection is open: `transport` says whether it is `webrtc` or
 * `websocket` (the fallback). Rejects with `SwitchboardError`: `connection_failed` (neither
 * transport connected, or the server is unreachable), `invalid_offer` / `server_full` /
 * `shutdown` (the server's refusals), `webrtc_error` (no fallback allowed). Options as for
 * pairing (`iceServers` default none: the server's answer carries its addresses). A kick arrives
 * as the connection's `close` event with reason `goodbye` and the server's `detail`.
 */
export async function connectToServer(url = "/connect", options: ServerOptions = {}): Promise<ServerConnection> {
  const settings = { ...SERVER_DEFAULTS, ...withoutUndefined(options) };
  const fallback = options.fallback ?? true;
  if (typeof settings.webrtcTimeoutMs !== "number" || !(settings.webrtcTimeoutMs > 0)) {
    throw new SwitchboardError("invalid_options", "webrtcTimeoutMs must be a positive number");
  }
  let ready: ServerConnection;
  try {
    ready = await connectWebRtc(url, settings, fallback);
  } catch (error) {
    if (!fallback || !(error instanceof WebRtcUnavailable)) throw error;
    ready = await SocketConnection.open(
      socketUrl(url, options.fallbackUrl, options.token),
      channelSpecs(options.channels ?? DEFAULT_CHANNELS),
      resolvePairingOptions(settings).limits,
      options.WebSocket,
    );
  }
  // A page going away says goodbye, so the server knows at once instead of after a timeout.
  if (typeof addEventListener === "function") {
    const goodbye = () => ready.close("page closed");
    addEventListener("pagehide", goodbye);
    ready.on("close", () => removeEventListener("pagehide", goodbye));
  }
  return ready;
}

/** WebRTC could not connect (as opposed to the server refusing): the fallback may help. */
class WebRtcUnavailable extends SwitchboardError {}

/** `POST url` with an offer, then waits for the channels (at most `webrtcTimeoutMs` when `fallback`). */
async function connectWebRtc(url: string, options: ServerOptions & typeof SERVER_DEFAULTS, fallback: boolean): Promise<Connection> {
  if (typeof RTCPeerConnection === "undefined") throw new WebRtcUnavailable("webrtc_error", "this browser has no WebRTC");
  let described: Awaited<ReturnType<typeof describe>>;
  try {
    described = await describe("offerer", options);
  } catch (error) {
    if ((error as SwitchboardError).code === "invalid_options") throw error;
    throw new WebRtcUnavailable("webrtc_error", (error as Error).message);
  }
  const { connection, sdp } = described;
  let answer: { sdp?: unknown; error?: unknown; message?: unknown; reason?: unknown };
  try {
    const headers: Record<string, string> = { "content-type": "application/sdp" };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const response = await fetch(url, { method: "POST", headers, body: sdp });
    answer = (await response.json().catch(() => ({}))) as typeof answer;
    if (!response.ok) {
      const code = typeof answer.error === "string" ? answer.error : "connection_failed";
      const reason = typeof answer.reason === "string" ? answer.reason : undefined;
      throw new SwitchboardError(code, typeof answer.message === "string" ? answer.message : `HTTP ${response.status}`, reason);
    }
  } catch (error) {
    connection.close();
    throw error instanceof SwitchboardError ? error : new SwitchboardError("connection_failed", `cannot reach ${url}: ${(error as Error).message}`);
  }
  if (typeof answer.sdp !== "string") {
    connection.close();
    throw new SwitchboardError("bad_server_message", "the server's answer has no sdp");
  }
  const open = opened(connection);
  connection.receive({ type: "answer", sdp: answer.sdp });
  if (!fallback) return open;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WebRtcUnavailable("connection_failed", `WebRTC did not open in ${options.webrtcTimeoutMs} ms`)), options.webrtcTimeoutMs);
  });
  try {
    return await Promise.race([open, late]);
  } catch (error) {
    connection.close();
    throw error instanceof WebRtcUnavailable ? error : new WebRtcUnavailable("connection_failed", (error as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

/** The fallback's WebSocket URL: `explicit`, or `url` + `/ws` on this page's origin, as ws(s), with the token as `?token=`. */
function socketUrl(url: string, explicit: string | undefined, token: string | undefined): string {
  const base = typeof location === "undefined" ? undefined : location.href;
  const target = new URL(explicit ?? url, base);
  if (explicit === undefined) target.pathname = `${target.pathname.replace(/\/$/, "")}/ws`;
  if (token !== undefined) target.searchParams.set("token", token);
  if (target.protocol === "http:") target.protocol = "ws:";
  else if (target.protocol === "https:") target.protocol = "wss:";
  return target.toString();
}

function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
