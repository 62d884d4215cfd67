/**
 * Why a server refused a WebSocket: browsers hide a refused upgrade's HTTP status (the socket just
 * closes with 1006), so the client asks the same URL with a plain GET, which Switchboard servers
 * answer with the same JSON refusal.
 */
import { SwitchboardError } from "./errors.js";

/** How long the client waits for the server to say why it refused a WebSocket. */
const REFUSAL_TIMEOUT_MS = 3000;

/**
 * The JSON refusal (`{error, message, reason?}`) the server answers a plain GET of `wsUrl` with,
 * or `null` when it has none (the server is unreachable, or the failure was not a refusal).
 */
export async function whyRefused(wsUrl: string): Promise<SwitchboardError | null> {
  if (typeof fetch === "undefined") return null;
  const httpUrl = wsUrl.replace(/^ws(s?):/, "http$1:");
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REFUSAL_TIMEOUT_MS);
  try {
    const response = await fetch(httpUrl, { cache: "no-store", signal: abort.signal });
    if (response.ok) return null;
    const body = (await response.json()) as { error?: unknown; message?: unknown; reason?: unknown };
    if (typeof body.error !== "string") return null;
    const message = typeof body.message === "string" ? body.message : body.error;
    const reason = typeof body.reason === "string" ? body.reason : undefined;
    return new SwitchboardError(body.error, `the server refused the connection (HTTP ${response.status}): ${message}`, reason);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

