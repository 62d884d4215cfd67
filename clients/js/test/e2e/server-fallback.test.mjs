// The server peer's WebSocket fallback with real Chromium. UDP between browser and server is
// blocked: the server, bound to 127.0.0.1, advertises 127.0.0.2, where the browser's ICE checks
// never reach it (Chromium's `--force-webrtc-ip-handling-policy=disable_non_proxied_udp` switch
// did not stop WebRTC here, so the block is on the path, as a firewall would do it). The browser falls back to
// `/connect/ws` and gets the same connection API; the server sees the same events and knows the
// transport. Against a reachable server the browser stays on WebRTC; with `fallback: false` the
// blocked one fails clearly.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { echoFive, launchBrowser, openEchoPage, startEcho, waitLine } from "./harness.mjs";

let blocked;
let reachable;
let browser;
before(async () => {
  blocked = await startEcho({ publicIps: ["127.0.0.2"] });
  reachable = await startEcho();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await blocked?.stop();
  await reachable?.stop();
});

/** Connects in the page; messages land in window.got, the close event in window.closeEvent. */
function connect(page, options) {
  return page.evaluate(async (options) => {
    window.got = [];
    const started = performance.now();
    window.conn = await window.sb.connectToServer("/connect", options);
    window.conn.on("message", ({ channel, data }) =>
      window.got.push({ channel, text: typeof data === "string" ? data : null, size: typeof data === "string" ? data.length : data.byteLength, head: typeof data === "string" ? null : Array.from(data.subarray(0, 3)) }),
    );
    window.conn.on("close", (event) => (window.closeEvent = event));
    return { transport: window.conn.transport, ms: Math.round(performance.now() - started), unreliable: window.conn.channelInfo("unreliable") };
  }, options);
}

test("with UDP blocked the browser falls back to the WebSocket: same API, both channels, both ways", async () => {
  const page = await openEchoPage(blocked, browser);
  const before = blocked.lines.length;
  const connected = await connect(page, { webrtcTimeoutMs: 2000 });
  console.log(`fell back to ${connected.transport} after ${connected.ms} ms`);
  assert.equal(connected.transport, "websocket");
  assert.ok(connected.ms >= 1900, "WebRTC was given its time first");
  // Over TCP nothing is unordered or lossy, and the client says so.
  assert.deepEqual(connected.unreliable, { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: 1 });
  const opened = await waitLine(blocked, (l) => blocked.lines.indexOf(l) >= before && l.startsWith("open "));
  assert.match(opened, /^open [0-9a-f]{32} websocket$/);

  const got = await echoFive(page);
  assert.deepEqual(
    got.map((m) => [m.channel, m.text ?? m.size]),
    [["reliable", "text over reliable"], ["reliable", 5], ["reliable", 100_000], ["unreliable", "text over unreliable"], ["unreliable", 3]],
  );
  assert.deepEqual(got[1].head, [1, 2, 3]);
  assert.deepEqual(page.problems, []);
});

test("with UDP blocked: a kick closes the fallback with the server's reason; a closed page is seen at once", async () => {
  const page = await openEchoPage(blocked, browser);
  assert.equal((await connect(page, { webrtcTimeoutMs: 1000 })).transport, "websocket");
  await page.evaluate(() => window.conn.send("reliable", "kick me"));
  await page.waitForFunction(() => window.closeEvent !== undefined, null, { timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => window.closeEvent), { reason: "goodbye", detail: "you asked" });
  const error = await page.evaluate(() => { try { window.conn.send("reliable", "x"); } catch (e) { return e.code; } });
  assert.equal(error, "peer_not_connected");

  const second = await openEchoPage(blocked, browser);
  assert.equal((await connect(second, { webrtcTimeoutMs: 1000 })).transport, "websocket");
  const before = blocked.lines.length;
  const since = Date.now();
  await second.close();
  const line = await waitLine(blocked, (l) => blocked.lines.indexOf(l) >= before && l.startsWith("closed "));
  console.log(`server saw "${line}" after ${Date.now() - since} ms`);
  assert.match(line, /goodbye: page closed$/);
});

test("a browser that can use UDP stays on WebRTC; with fallback off a blocked one fails clearly", async () => {
  const page = await openEchoPage(reachable, browser);
  const before = reachable.lines.length;
  const connected = await connect(page, {});
  assert.equal(connected.transport, "webrtc");
  assert.deepEqual(connected.unreliable, { ordered: false, maxRetransmits: 0, maxPacketLifeTime: null, id: 1 });
  assert.match(await waitLine(reachable, (l) => reachable.lines.indexOf(l) >= before && l.startsWith("open ")), / webrtc$/);

  const stuck = await openEchoPage(blocked, browser);
  const refused = await stuck.evaluate(async () => {
    try {
      await window.sb.connectToServer("/connect", { fallback: false, connectTimeoutMs: 2000 });
      return "connected";
    } catch (error) {
      return error.code;
    }
  });
  assert.equal(refused, "connection_failed");
  assert.deepEqual(stuck.problems, []);
});
