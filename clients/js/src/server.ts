/**
 * Client/server mode: connect to a Switchboard server peer (a Rust game server speaking WebRTC)
 * with one HTTP request. The browser offers (every candidate gathered, or mDNS names), the server
 * answers with its candidates; then the same `Connection` object and channels as a room peer.
 */
import { Connection } from "./connection.js";
import { SwitchboardError } from "./errors.js";
import { type PairingOptions, describe, opened } from "./pairing.js";

/**
 * Connects to a server peer: `url` is its connect endpoint (default `/connect` on this page's
 * server). Resolves when both channels are open. Rejects with `SwitchboardError`:
 * `connection_failed` (HTTP or WebRTC failure), `invalid_offer` / `server_full` (the server's
 * refusals), `webrtc_error`. Options as for pairing (`iceServers` default none: the server's
 * answer carries its addresses). A kick arrives as the connection's `close` event with reason
 * `goodbye` and the server's `detail`.
 */
export async function connectToServer(url = "/connect", options: PairingOptions = {}): Promise<Connection> {
  const { connection, sdp } = await describe("offerer", { gatherTimeoutMs: 1_000, connectTimeoutMs: 15_000, ...options });
  let answer: { sdp?: unknown; error?: unknown; message?: unknown };
  try {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/sdp" }, body: sdp });
    answer = (await response.json().catch(() => ({}))) as typeof answer;
    if (!response.ok) {
      const code = typeof answer.error === "string" ? answer.error : "connection_failed";
      throw new SwitchboardError(code, typeof answer.message === "string" ? answer.message : `HTTP ${response.status}`);
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
  const ready = await open;
  // A page going away says goodbye, so the server knows at once instead of after ICE times out.
  if (typeof addEventListener === "function") {
    const goodbye = () => ready.close("page closed");
    addEventListener("pagehide", goodbye);
    ready.on("close", () => removeEventListener("pagehide", goodbye));
  }
  return ready;
}
