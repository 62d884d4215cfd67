// The server peer (crates/peer, on str0m) with real Chromium pages, connected with one
// `POST /connect` each: both channels both ways, text and binary, 20 connections from one page,
// kick, page close, mDNS-only browsers, hostile UDP on the shared port, and proof that the
// unreliable channel does not retransmit (a lossy UDP relay between browser and server).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import dgram from "node:dgram";
import { after, before, test } from "node:test";
import { WebSocket } from "ws";
import { echoFive, exposedCandidates, installPatterns, launchBrowser, openEchoPage, startEcho, startServer, waitLine } from "./harness.mjs";

let echo;
let browser;
before(async () => {
  echo = await startEcho();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await echo?.stop();
});

/** Connects in the page; messages and the close event land in window.got / window.closeEvent. */
function connect(page) {
  return page.evaluate(async () => {
    window.got = [];
    window.conn = await window.sb.connectToServer("/connect");
    window.conn.on("message", ({ channel, data }) =>
      window.got.push({ channel, text: typeof data === "string" ? data : null, bytes: typeof data === "string" ? null : Array.from(data.subarray(0, 4)), size: typeof data === "string" ? data.length : data.byteLength }),
    );
    window.conn.on("close", (event) => (window.closeEvent = event));
    return { unreliable: window.conn.channelInfo("unreliable"), reliable: window.conn.channelInfo("reliable") };
  });
}

test("both channels, both directions, text and binary, large reliable messages chunked", async () => {
  const page = await openEchoPage(echo, browser);
  const info = await connect(page);
  assert.deepEqual(info.unreliable, { ordered: false, maxRetransmits: 0, maxPacketLifeTime: null, id: 1 });
  assert.deepEqual(info.reliable, { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: 0 });
  const got = await echoFive(page);
  const reliable = got.filter((m) => m.channel === "reliable");
  assert.deepEqual(reliable.map((m) => m.text ?? m.size), ["text over reliable", 5, 100_000], "reliable in order, whole");
  assert.deepEqual(reliable[1].bytes, [1, 2, 3, 4]);
  const unreliable = got.filter((m) => m.channel === "unreliable");
  assert.deepEqual(unreliable.map((m) => m.text ?? m.size).sort(), [3, "text over unreliable"].sort());
  assert.deepEqual(page.problems, []);
});

test("reliable messages past every buffer come back whole and in order: 1 MiB, 16 MiB, then 1,000 x 8 KiB", async () => {
  const page = await openEchoPage(echo, browser);
  await installPatterns(page);
  await connect(page);
  // Sizes on both sides of str0m's 128 KiB send buffer, then the largest message (16 MiB), then a
  // burst: every message is checked byte for byte, in the page, in order.
  const sizes = [128 * 1024 - 64, 128 * 1024 + 64, 1024 * 1024, 16 * 1024 * 1024, ...Array(1000).fill(8 * 1024)];
  const result = await page.evaluate(async (sizes) => {
    const checked = [];
    const done = new Promise((resolve) => {
      window.conn.on("message", ({ channel, data }) => {
        const seed = checked.length;
        checked.push(channel === "reliable" && typeof data !== "string" && data.byteLength === sizes[seed] && window.isPattern(seed, data));
        if (checked.length === sizes.length) resolve();
      });
    });
    sizes.forEach((size, seed) => window.conn.send("reliable", window.pattern(seed, size)));
    await Promise.race([done, new Promise((r) => setTimeout(r, 120_000))]);
    return { count: checked.length, bad: checked.flatMap((ok, i) => (ok ? [] : [i])) };
  }, sizes);
  assert.deepEqual(result, { count: sizes.length, bad: [] }, "every message back, whole, in order");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("twenty simultaneous connections from one page", async () => {
  const page = await openEchoPage(echo, browser);
  const results = await page.evaluate(async () => {
    const conns = await Promise.all(Array.from({ length: 20 }, () => window.sb.connectToServer("/connect")));
    const echoed = await Promise.all(
      conns.map((conn, i) => new Promise((resolve) => {
        conn.on("message", ({ data }) => resolve(data));
        conn.send("reliable", `conn ${i}`);
      })),
    );
    for (const conn of conns) conn.close();
    return echoed;
  });
  assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => `conn ${i}`));
});

test("kick: the browser gets a close event with the server's reason", async () => {
  const page = await openEchoPage(echo, browser);
  await connect(page);
  await page.evaluate(() => window.conn.send("reliable", "kick me"));
  await page.waitForFunction(() => window.closeEvent !== undefined, null, { timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => window.closeEvent), { reason: "goodbye", detail: "you asked" });
  await waitLine(echo, (l) => l.startsWith("closed ") && l.endsWith("kicked: you asked"));
  const error = await page.evaluate(() => { try { window.conn.send("reliable", "x"); } catch (e) { return e.code; } });
  assert.equal(error, "peer_not_connected");
});

test("a closed page is seen by the server promptly", async () => {
  const page = await openEchoPage(echo, browser);
  await connect(page);
  const opened = echo.lines.filter((l) => l.startsWith("open ")).length;
  assert.ok(opened > 0);
  const before = echo.lines.length;
  const since = Date.now();
  await page.close();
  const line = await waitLine(echo, (l) => echo.lines.indexOf(l) >= before && l.startsWith("closed "), 15000);
  const elapsed = Date.now() - since;
  console.log(`server saw "${line}" after ${elapsed} ms`);
  assert.ok(elapsed < 10000, `${elapsed} ms`);
});

test("a browser with mDNS-hidden candidates connects (the server learns its address from its checks)", async () => {
  const mdns = await launchBrowser({ mdns: true });
  try {
    const page = await openEchoPage(echo, mdns);
    await connect(page);
    await page.waitForFunction(() => window.conn.rtc.iceGatheringState === "complete", null, { timeout: 10000 });
    const offered = await page.evaluate(() => window.conn.rtc.localDescription.sdp.split("\r\n").filter((line) => line.startsWith("a=candidate:")));
    assert.deepEqual(exposedCandidates(offered), [], "the offer gives away no address of this machine");
    await page.evaluate(() => window.conn.send("reliable", "through mdns"));
    await page.waitForFunction(() => window.got.some((m) => m.text === "through mdns"), null, { timeout: 10000 });
  } finally {
    await mdns.close();
  }
});

test("hostile datagrams on the shared UDP port disturb nobody; plain STUN is still answered", async () => {
  const page = await openEchoPage(echo, browser);
  await connect(page);
  const [host, port] = [echo.udp.split(":")[0], Number(echo.udp.split(":")[1])];
  const socket = dgram.createSocket("udp4");
  const send = (bytes) => new Promise((resolve) => socket.send(bytes, port, host, resolve));
  const stunHeader = Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, ...Array(12).fill(7)]);
  const garbage = [
    Buffer.alloc(0), Buffer.from([0]), Buffer.from([22, 254, 253]), Buffer.alloc(1500, 0xff),
    stunHeader.subarray(0, 10), Buffer.concat([stunHeader.subarray(0, 2), Buffer.from([0, 8]), stunHeader.subarray(4), Buffer.from([0, 6, 0, 4])]),
    Buffer.from([23, 254, 253, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5]),
  ];
  for (const bytes of garbage) await send(bytes);
  for (let i = 0; i < 3000; i++) await send(garbage[i % garbage.length]);
  socket.close();
  await page.evaluate(() => window.conn.send("reliable", "still here"));
  await page.waitForFunction(() => window.got.some((m) => m.text === "still here"), null, { timeout: 10000 });
  const stun = await new Promise((resolve) => execFile("turnutils_stunclient", ["-p", String(port), host], { timeout: 10000 }, (error, stdout, stderr) => resolve(`${stdout}${stderr}`)));
  assert.match(stun, /UDP reflexive addr: 127\.0\.0\.1:\d+/, stun);
});

test("the unreliable channel never retransmits: through a lossy relay, reliable arrives whole and unreliable does not", async () => {
  // Browser <-> relay (127.0.0.2:P) <-> server (127.0.0.1:P). The server advertises 127.0.0.2.
  const probe = dgram.createSocket("udp4");
  await new Promise((resolve) => probe.bind(0, "127.0.0.1", resolve));
  const port = probe.address().port;
  probe.close();
  const lossy = await startEcho({ udp: `127.0.0.1:${port}`, publicIps: ["127.0.0.2"] });
  const relay = dgram.createSocket("udp4");
  await new Promise((resolve) => relay.bind(port, "127.0.0.2", resolve));
  const upstream = new Map(); // browser address -> socket toward the server
  let dropping = false;
  let dropped = 0;
  let seed = 42;
  relay.on("message", (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let up = upstream.get(key);
    if (!up) {
      up = dgram.createSocket("udp4");
      up.bind(0, "127.0.0.1");
      up.on("message", (reply) => {
        // Drop a third of the server's datagrams (seeded pseudo-random: a fixed period could
        // hit the same retransmission every time) while the test says so.
        if (dropping && (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 3 === 0) {
          dropped++;
          return;
        }
        relay.send(reply, from.port, from.address);
      });
      upstream.set(key, up);
    }
    up.send(msg, port, "127.0.0.1");
  });
  try {
    const page = await openEchoPage(lossy, browser);
    await connect(page);
    dropping = true;
    const N = 150;
    await page.evaluate((N) => {
      for (let i = 0; i < N; i++) {
        window.conn.send("unreliable", `u${i}`);
        window.conn.send("reliable", `r${i}`);
      }
    }, N);
    // Loss for two seconds, then a clean path: lost unreliable messages must stay lost while
    // every reliable one is retransmitted (SCTP's backed-off timers fire after the loss ends).
    await new Promise((r) => setTimeout(r, 2000));
    dropping = false;
    await page.waitForFunction((N) => window.got.filter((m) => m.channel === "reliable").length === N, N, { timeout: 30000 });
    await new Promise((r) => setTimeout(r, 1500));
    const got = await page.evaluate(() => window.got);
    const reliable = got.filter((m) => m.channel === "reliable").map((m) => m.text);
    const unreliable = got.filter((m) => m.channel === "unreliable").map((m) => m.text);
    assert.deepEqual(reliable, Array.from({ length: N }, (_, i) => `r${i}`), "every reliable message, in order, despite the loss");
    assert.ok(dropped > 20, `the relay dropped ${dropped} datagrams`);
    assert.ok(unreliable.length < N, `lost unreliable messages stay lost: ${unreliable.length} of ${N} arrived`);
    assert.equal(new Set(unreliable).size, unreliable.length, "none duplicated");
    console.log(`relay dropped ${dropped} datagrams; ${N}/${N} reliable and ${unreliable.length}/${N} unreliable arrived`);
  } finally {
    relay.close();
    for (const up of upstream.values()) up.close();
    await lossy.stop();
  }
});

test("the hub way: the server peer hosts a hub room and offers to every browser in it", async () => {
  const hub = await startServer();
  const served = await startEcho({ hub: `${hub.ws}/ws/echo-hub` });
  try {
    const hostLine = served.lines.find((l) => l.startsWith("hub "));
    const serverId = hostLine.split(" ").pop();
    // A non-browser client of the hub (a raw WebSocket, as docs/protocol.md describes it) gets the
    // offer and then the end of candidates: nothing to wait for.
    const raw = new WebSocket(`${hub.ws}/ws/echo-hub`);
    const signals = [];
    raw.on("message", (text) => {
      const message = JSON.parse(text);
      if (message.type === "signal") signals.push(message.data);
    });
    const deadline = Date.now() + 10000;
    while (signals.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    raw.close();
    assert.deepEqual(signals.map((s) => s.type), ["offer", "candidate"]);
    assert.match(signals[0].sdp, /a=ice-lite/);
    assert.equal(signals[1].candidate, null, "end of candidates");
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${hub.url}/`);
    const host = await page.evaluate(async () => {
      const sb = await import("/switchboard.js");
      window.got = [];
      window.left = [];
      window.room = await sb.joinRoom("/ws/echo-hub");
      window.room.on("message", ({ channel, data }) => window.got.push({ channel, data: typeof data === "string" ? data : Array.from(data) }));
      window.room.on("leave", ({ peer, reason }) => window.left.push({ id: peer.id, reason }));
      await new Promise((resolve) => window.room.on("connect", resolve));
      return { host: window.room.host, topology: window.room.info.topology };
    });
    assert.deepEqual(host, { host: serverId, topology: "star" });
    await page.evaluate((id) => {
      window.room.send(id, "reliable", "over the hub way");
      window.room.send(id, "unreliable", new Uint8Array([4, 2]));
    }, serverId);
    await page.waitForFunction(() => window.got.length === 2, null, { timeout: 10000 });
    const got = await page.evaluate(() => window.got);
    assert.deepEqual(got.find((m) => m.channel === "reliable").data, "over the hub way");
    assert.deepEqual(got.find((m) => m.channel === "unreliable").data, [4, 2]);
    const myId = await page.evaluate(() => window.room.id);
    await waitLine(served, (l) => l === `open ${myId} webrtc`);
    // Leaving the room closes the server peer's connection for that browser.
    await page.evaluate(() => window.room.close());
    await waitLine(served, (l) => l.startsWith(`closed ${myId}`));
  } finally {
    await served.stop();
    await hub.stop();
  }
});
