// The unmodified `peerjs` npm client (1.5.5, the one in node_modules) in Chromium pages against
// `switchboard serve`'s PeerJS endpoint, configured as docs/compat.md tells PeerJS users: a
// server-issued id, a data connection both ways (small and large messages), ID-TAKEN for a
// duplicate id, reconnect with the same id after disconnect(), and `peer-unavailable` for an id
// nobody has (the server's EXPIRE); a Firefox ESR page and a Chromium page connect the same way.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { launchFirefox, openFirefoxPage, waitForFirefox } from "./firefox.mjs";
import { launchBrowser, openPage, startServer, waitFor } from "./harness.mjs";

const PEERJS = createRequire(import.meta.url).resolve("peerjs/dist/peerjs.min.js");
const env = { server: undefined, browser: undefined, firefox: undefined, iceServers: undefined };

/** The ICE servers the hub hands out (its built-in STUN server), read from a native welcome. */
async function hubIceServers(server) {
  const socket = new WebSocket(`${server.ws}/ws/ice-probe`);
  const welcome = await new Promise((resolve, reject) => {
    socket.once("message", (data) => resolve(JSON.parse(String(data))));
    socket.once("error", reject);
  });
  socket.close();
  return welcome.ice_servers;
}

before(async () => {
  env.server = await startServer(["--peerjs-expire-timeout-ms", "1000"]);
  env.browser = await launchBrowser();
  env.firefox = await launchFirefox();
  env.iceServers = await hubIceServers(env.server);
  assert.ok(env.iceServers[0].urls[0].startsWith("stun:127.0.0.1:"), JSON.stringify(env.iceServers));
});

after(async () => {
  await env.firefox?.close();
  await env.browser?.close();
  await env.server?.stop();
});

/**
 * A page with PeerJS loaded and a `Peer` made as docs/compat.md says, with `id` or a server-issued
 * one; everything it sees lands in `window.log`. Resolves to the page once the peer is open.
 */
async function peerPage(id, { firefox = false } = {}) {
  const page = firefox ? await openFirefoxPage(env.firefox, env.server.url) : await openPage(env.browser, env.server);
  page.isFirefox = firefox;
  await page.addScriptTag({ path: PEERJS });
  const { port, hostname } = new URL(env.server.url);
  await page.evaluate(
    ({ id, options }) => {
      window.log = { opens: [], errors: [], data: [], connections: [], closed: [], disconnected: 0 };
      const record = (conn) => {
        conn.on("open", () => window.log.connections.push(conn.peer));
        conn.on("data", (data) => window.log.data.push({ from: conn.peer, data }));
        conn.on("close", () => window.log.closed.push(conn.peer));
      };
      window.record = record;
      const peer = id ? new Peer(id, options) : new Peer(options);
      window.peer = peer;
      peer.on("open", (given) => window.log.opens.push(given));
      peer.on("error", (error) => window.log.errors.push({ type: error.type, message: error.message }));
      peer.on("disconnected", () => (window.log.disconnected += 1));
      peer.on("connection", record);
    },
    { id, options: { host: hostname, port: Number(port), path: "/peerjs", key: "peerjs", config: { iceServers: env.iceServers } } },
  );
  return page;
}

/** waitFor for a page of either browser (their waitForFunction take their arguments in another order). */
const until = (page, predicate, arg, timeoutMs) =>
  page.isFirefox ? waitForFirefox(page, predicate, arg, timeoutMs) : waitFor(page, predicate, arg, timeoutMs);
const opened = (page, count = 1) => until(page, (n) => window.log.opens.length >= n || window.log.errors.length > 0, count);

test("two PeerJS pages connect through the server and exchange data both ways", async () => {
  const ann = await peerPage();
  await opened(ann);
  const annId = await ann.evaluate(() => window.log.opens[0]);
  assert.match(annId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "a server-issued UUID");
  const bobId = `bob-${Date.now()}`;
  const bob = await peerPage(bobId);
  await opened(bob);
  assert.deepEqual(await bob.evaluate(() => window.log.opens), [bobId]);
  await bob.evaluate((other) => {
    const conn = window.peer.connect(other, { reliable: true });
    window.record(conn);
    window.conn = conn;
  }, annId);
  await waitFor(bob, (other) => window.log.connections.includes(other), annId);
  await waitFor(ann, (other) => window.log.connections.includes(other), bobId);
  const big = "x".repeat(200 * 1024);
  await bob.evaluate((big) => {
    for (let i = 0; i < 100; i += 1) window.conn.send({ n: i });
    window.conn.send(big);
  }, big);
  await waitFor(ann, () => window.log.data.length >= 101, undefined, 30000);
  const received = await ann.evaluate(() => window.log.data.map((d) => (typeof d.data === "string" ? d.data.length : d.data.n)));
  assert.deepEqual(received, [...Array(100).keys(), big.length], "in order, the 200 KiB one whole");
  await ann.evaluate(() => window.peer.connections[Object.keys(window.peer.connections)[0]][0].send("and back"));
  await waitFor(bob, () => window.log.data.some((d) => d.data === "and back"));
  for (const page of [ann, bob]) {
    assert.deepEqual(await page.evaluate(() => window.log.errors), []);
    assert.deepEqual(page.problems, []);
  }
  await Promise.all([ann, bob].map((p) => p.context().close()));
});

test("a duplicate id gets unavailable-id, and disconnect() then reconnect() keeps the id", async () => {
  const id = `same-${Date.now()}`;
  const first = await peerPage(id);
  await opened(first);
  const second = await peerPage(id);
  await waitFor(second, () => window.log.errors.length > 0);
  assert.deepEqual(await second.evaluate(() => window.log.errors.map((e) => e.type)), ["unavailable-id"]);
  assert.match(await second.evaluate(() => window.log.errors[0].message), /is taken/);
  await first.evaluate(() => window.peer.disconnect());
  await waitFor(first, () => window.log.disconnected === 1);
  await first.evaluate(() => window.peer.reconnect());
  await opened(first, 2);
  assert.deepEqual(await first.evaluate(() => window.log.opens), [id, id]);
  // Reachable again under the same id.
  const caller = await peerPage();
  await opened(caller);
  await caller.evaluate((other) => {
    const conn = window.peer.connect(other);
    window.record(conn);
    conn.on("open", () => conn.send("after reconnect"));
  }, id);
  await waitFor(first, () => window.log.data.some((d) => d.data === "after reconnect"));
  assert.deepEqual(await first.evaluate(() => window.log.errors), []);
  for (const page of [first, second, caller]) assert.deepEqual(page.problems, []);
  await Promise.all([first, second, caller].map((p) => p.context().close()));
});

test("connecting to an id nobody has ends in peer-unavailable once the server expires it", async () => {
  const page = await peerPage();
  await opened(page);
  const started = Date.now();
  await page.evaluate(() => window.peer.connect("nobody-here"));
  await waitFor(page, () => window.log.errors.length > 0, undefined, 10000);
  const waited = Date.now() - started;
  const errors = await page.evaluate(() => window.log.errors);
  assert.equal(errors[0].type, "peer-unavailable", JSON.stringify(errors));
  assert.match(errors[0].message, /nobody-here/);
  assert.ok(waited >= 900, `EXPIRE came after the 1000 ms expire timeout, not at once (${waited} ms)`);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("a Firefox ESR page and a Chromium page connect with PeerJS and exchange data both ways", async () => {
  const fox = await peerPage(`fox-${Date.now()}`, { firefox: true });
  await opened(fox);
  const foxId = await fox.evaluate(() => window.log.opens[0]);
  const chrome = await peerPage();
  await opened(chrome);
  const chromeId = await chrome.evaluate(() => window.log.opens[0]);
  assert.deepEqual(await fox.evaluate(() => window.log.errors), []);
  await fox.evaluate((other) => {
    const conn = window.peer.connect(other, { reliable: true });
    window.record(conn);
    window.conn = conn;
  }, chromeId);
  await until(fox, (other) => window.log.connections.includes(other), chromeId, 30000);
  await until(chrome, (other) => window.log.connections.includes(other), foxId, 30000);
  const big = "y".repeat(100 * 1024);
  await fox.evaluate((big) => {
    for (let i = 0; i < 20; i += 1) window.conn.send({ n: i });
    window.conn.send(big);
  }, big);
  await until(chrome, () => window.log.data.length >= 21, undefined, 30000);
  const received = await chrome.evaluate(() => window.log.data.map((d) => (typeof d.data === "string" ? d.data.length : d.data.n)));
  assert.deepEqual(received, [...Array(20).keys(), big.length]);
  await chrome.evaluate(() => window.peer.connections[Object.keys(window.peer.connections)[0]][0].send("from chromium"));
  await until(fox, () => window.log.data.some((d) => d.data === "from chromium"));
  for (const page of [fox, chrome]) {
    assert.deepEqual(await page.evaluate(() => window.log.errors), []);
    assert.deepEqual(page.problems, []);
  }
  await fox.close();
  await chrome.context().close();
});
