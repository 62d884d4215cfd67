// The hub's own WebSocket layer against the browsers' WebSocket, in Chromium and Firefox ESR: a
// signaling message of exactly max_message_bytes comes back whole (routed to self), one byte
// more is refused with `message_too_big` and close code 1009, and the pings the server sends are
// answered by the browser (the socket outlives several idle timeouts' worth of heartbeats).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchFirefox, openFirefoxPage } from "./firefox.mjs";
import { launchBrowser, openPage, startServer } from "./harness.mjs";

const MAX = 65536;
const HEAD = '{"type":"message","to":"self","data":"';
const TAIL = '"}';
let server;
let firefox;
let chromium;
before(async () => {
  // Short heartbeats: the idle timeout (3 heartbeats) passes several times during the test.
  server = await startServer(["--heartbeat-interval-ms", "200", "--idle-timeout-ms", "600"]);
  firefox = await launchFirefox();
  chromium = await launchBrowser();
});
after(async () => {
  await firefox?.close();
  await chromium?.close();
  await server?.stop();
});

/** In the page: a raw signaling socket; sends one message of `size` bytes to itself. */
function limitsInPage({ size, waitMs, head, tail }) {
  return new Promise((resolve) => {
    const text = head + "x".repeat(size - head.length - tail.length) + tail;
    const frames = [];
    const ws = new WebSocket(`ws://${location.host}/ws/limits-${size}`);
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "welcome") {
        // Idle past the idle timeout first: only the browser's pongs keep the socket open.
        setTimeout(() => ws.send(text), waitMs);
        return;
      }
      frames.push({ type: message.type, code: message.code, length: typeof message.data === "string" ? message.data.length : undefined });
      if (message.type === "message") ws.close(1000);
    };
    ws.onclose = (event) => resolve({ frames, code: event.code, reason: event.reason, sent: text.length });
  });
}

for (const [name, open] of [
  ["Chromium", () => openPage(chromium, server)],
  ["Firefox ESR", () => openFirefoxPage(firefox, server.url)],
]) {
  test(`${name}: a signaling message of exactly max_message_bytes passes, one byte more closes with 1009`, { timeout: 60_000 }, async () => {
    const page = await open();
    try {
      const at = await page.evaluate(limitsInPage, { size: MAX, waitMs: 1500, head: HEAD, tail: TAIL });
      assert.equal(at.sent, MAX);
      assert.deepEqual(at.frames, [{ type: "message", code: undefined, length: MAX - HEAD.length - TAIL.length }]);
      assert.equal(at.code, 1000);
      const past = await page.evaluate(limitsInPage, { size: MAX + 1, waitMs: 0, head: HEAD, tail: TAIL });
      assert.deepEqual(past.frames, [{ type: "error", code: "message_too_big", length: undefined }]);
      assert.deepEqual([past.code, past.reason], [1009, "message_too_big"]);
    } finally {
      await page.close().catch(() => {});
    }
  });
}
