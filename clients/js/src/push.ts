/**
 * Web Push helpers: subscribe this browser with the server's VAPID key, so `Room.pushSubscribe`
 * can register it. A service worker shows the push (examples/push-service-worker.js).
 */
import { SwitchboardError } from "./errors.js";

/** Decodes base64url (no padding needed) to bytes, as `applicationServerKey` wants them. */
export function base64UrlToBytes(text: string): Uint8Array<ArrayBuffer> {
  const unpadded = text.replace(/=+$/, "");
  const base64 = unpadded.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (unpadded.length % 4)) % 4);
  const binary = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Subscribes `registration` (your service worker's) to pushes from the server at `serverUrl`
 * (http(s)://host, where it serves `/push/vapid-public-key`). Resolves to the subscription to
 * pass to `room.pushSubscribe`. Rejects with `push_unavailable` when the server has push off.
 */
export async function subscribeToPush(
  registration: ServiceWorkerRegistration,
  serverUrl: string,
): Promise<PushSubscription> {
  const response = await fetch(new URL("/push/vapid-public-key", serverUrl));
  if (!response.ok) {
    throw new SwitchboardError("push_unavailable", `the server has no push (${response.status})`);
  }
  const key = base64UrlToBytes((await response.text()).trim());
  return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
}
