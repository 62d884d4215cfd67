// Cluster mode in Chromium: nodes of one cluster (`switchboard serve --redis`) sharing a real
// redis-server. Pages on two different nodes form a P2P room; pages behind a load balancer keep
// their ids, peers and data channels while every node but one is restarted under them; the Rust
// client in wasm (the /demo/rust-chat page) does the same while every node is restarted.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { after, before, test } from "node:test";
import { join, launchBrowser, openPage, startServer, waitFor } from "./harness.mjs";

/** A free loopback TCP port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** redis-server on a free port, no persistence. */
async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const deadline = Date.now() + 10000;
  for (;;) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => socket.end(() => resolve(true)));
      socket.on("error", () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error("redis-server did not start");
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url: `redis://127.0.0.1:${port}/`, stop: () => child.kill("SIGKILL") };
}

/** In a page: counts the WebSocket connections it opens in `window.sockets` (a move opens one). */
function countSockets() {
  window.sockets = 0;
  const Base = window.WebSocket;
  window.WebSocket = class extends Base {
    constructor(...args) {
      super(...args);
      window.sockets += 1;
    }
  };
}

/**
 * Restarts the cluster's nodes one after the other (`rounds` of them, the oldest first): each
 * drains, its pages move their signaling through the balancer, and a fresh node takes its place
 * in `live` (the balancer's backends).
 */
async function restartNodes(live, rounds) {
  for (let round = 0; round < rounds; round++) {
    const old = env.nodes.shift();
    live.splice(live.indexOf(old.url.replace("http://", "")), 1);
    await old.stop();
    const fresh = await startServer(nodeArgs());
    env.nodes.push(fresh);
    live.push(fresh.url.replace("http://", ""));
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** A TCP load balancer: each connection goes to the next of `backends` (host:port strings). */
async function startBalancer(backends) {
  let next = 0;
  const server = net.createServer((client) => {
    const [host, port] = backends[next++ % backends.length].split(":");
    const upstream = net.connect(Number(port), host);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

const env = { redis: undefined, nodes: [], browser: undefined };
const nodeArgs = () => ["--redis", env.redis.url, "--heartbeat-interval-ms", "500"];

before(async () => {
  env.redis = await startRedis();
  for (let i = 0; i < 3; i++) env.nodes.push(await startServer(nodeArgs()));
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  for (const node of env.nodes) await node.stop();
  env.redis?.stop();
});

test("two pages on two nodes form a P2P room and exchange messages", async () => {
  const a = await openPage(env.browser, env.nodes[0]);
  const b = await openPage(env.browser, env.nodes[1]);
  const idA = await join(a, "across-nodes");
  const idB = await join(b, "across-nodes");
  await waitFor(a, (id) => window.log.connects.includes(id), idB);
  await waitFor(b, (id) => window.log.connects.includes(id), idA);
  await a.evaluate((id) => window.room.send(id, "reliable", "from node 0"), idB);
  await b.evaluate((id) => window.room.send(id, "reliable", "from node 1"), idA);
  await waitFor(b, () => window.log.messages.reliable?.some((m) => m.text === "from node 0"));
  await waitFor(a, () => window.log.messages.reliable?.some((m) => m.text === "from node 1"));
  assert.deepEqual([...a.problems, ...b.problems], []);
});

test("pages keep their ids, peers and channels while the nodes under them restart", async () => {
  const live = env.nodes.map((node) => node.url.replace("http://", ""));
  const balancer = await startBalancer(live);
  const pages = [];
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const page = await openPage(env.browser, { url: balancer.url });
    await page.evaluate(countSockets);
    ids.push(await join(page, "rolling", { resume: true }));
    pages.push(page);
  }
  for (const [i, page] of pages.entries()) {
    await waitFor(page, (others) => others.every((id) => window.log.connects.includes(id)), ids.filter((_, j) => j !== i));
  }
  // Restart two of the three nodes: at least one page was on one of them.
  await restartNodes(live, 2);
  // Two of the three nodes went away under the three pages: at least one page moved.
  const sockets = await Promise.all(pages.map((page) => page.evaluate(() => window.sockets)));
  assert.ok(sockets.reduce((a, b) => a + b) >= 4, `signaling sockets per page: ${sockets}`);
  for (const [i, page] of pages.entries()) {
    const state = await page.evaluate(() => ({ id: window.room.id, leaves: window.log.leaves, closes: window.log.closes }));
    assert.equal(state.id, ids[i], "the same id");
    assert.deepEqual(state.leaves, [], "nobody left");
    assert.deepEqual(state.closes, [], "the room did not close");
  }
  // The data channels never went through a node; signaling still works: a newcomer meets all.
  await pages[0].evaluate((id) => window.room.send(id, "reliable", "after the restarts"), ids[1]);
  await waitFor(pages[1], () => window.log.messages.reliable?.some((m) => m.text === "after the restarts"));
  const late = await openPage(env.browser, { url: balancer.url });
  const lateId = await join(late, "rolling", { resume: true });
  await waitFor(late, (others) => others.every((id) => window.log.connects.includes(id)), ids);
  for (const page of pages) await waitFor(page, (id) => window.log.connects.includes(id), lateId);
  assert.deepEqual(pages.flatMap((p) => p.problems), []);
  balancer.close();
});

test("the Rust client in wasm keeps its id, peers and channels while every node under it restarts", async () => {
  const live = env.nodes.map((node) => node.url.replace("http://", ""));
  const balancer = await startBalancer(live);
  const js = await openPage(env.browser, { url: balancer.url });
  const jsId = await join(js, "wasm-rolling", { resume: true });
  const context = await env.browser.newContext();
  const wasm = await context.newPage();
  const problems = [];
  wasm.on("pageerror", (error) => problems.push(error.message));
  await wasm.addInitScript(countSockets);
  await wasm.goto(`${balancer.url}/demo/rust-chat?room=wasm-rolling&resumable`);
  await wasm.waitForFunction(() => window.wasmRoom !== undefined || window.joinError !== undefined, null, { timeout: 20000 });
  const first = await wasm.evaluate(() => ({ id: window.wasmRoom?.id, token: window.wasmRoom?.resumeToken, error: window.joinError }));
  assert.equal(first.error, undefined, "the wasm page joined");
  assert.match(first.token, /^[0-9a-f]{32}$/);
  await waitFor(js, (id) => window.log.connects.includes(id), first.id);
  await wasm.waitForFunction((id) => window.events.some((e) => e.type === "connect" && e.peer === id), jsId, { timeout: 20000 });

  // Every node restarts, so the wasm page's node drains under it at least once; if it was the
  // last one, its move may still be under way: wait for the new token.
  await restartNodes(live, 3);
  await wasm.waitForFunction((token) => window.wasmRoom.resumeToken !== token, first.token, { timeout: 20000 });
  const after = await wasm.evaluate(() => ({
    id: window.wasmRoom.id,
    token: window.wasmRoom.resumeToken,
    sockets: window.sockets,
    ended: window.events.filter((e) => ["leave", "close", "error"].includes(e.type)),
  }));
  assert.ok(after.sockets >= 2, `the wasm page opened ${after.sockets} signaling sockets`);
  assert.equal(after.id, first.id, "the same id");
  assert.notEqual(after.token, first.token, "a new resume token (each works once)");
  assert.deepEqual(after.ended, [], "no leave, close or error on the wasm page");
  assert.deepEqual(await js.evaluate(() => ({ leaves: window.log.leaves, closes: window.log.closes })), { leaves: [], closes: [] });

  // The data channel never went through a node; the new signaling socket works: a newcomer
  // meets the wasm page.
  await js.evaluate((id) => window.room.send(id, "reliable", "after the restarts"), first.id);
  await wasm.waitForFunction(() => window.events.some((e) => e.type === "message" && e.data === "after the restarts"), null, { timeout: 20000 });
  await wasm.evaluate((id) => window.wasmRoom.send(id, "reliable", "from wasm"), jsId);
  await waitFor(js, () => window.log.messages.reliable?.some((m) => m.text === "from wasm"));
  const late = await openPage(env.browser, { url: balancer.url });
  const lateId = await join(late, "wasm-rolling", { resume: true });
  await waitFor(late, (id) => window.log.connects.includes(id), first.id);
  await wasm.waitForFunction((id) => window.events.some((e) => e.type === "connect" && e.peer === id), lateId, { timeout: 20000 });
  assert.deepEqual([...problems, ...js.problems, ...late.problems], []);
  await context.close();
  balancer.close();
});

test("a move that first reaches the draining node, then a stopped one, tries again until a live node takes it (JS and wasm)", async () => {
  // The balancer sends every connection to the first node, and keeps doing so while that node
  // drains and after it stopped (a balancer without health checks); only later does it send
  // them to the others.
  const [first, ...others] = env.nodes.map((node) => node.url.replace("http://", ""));
  const live = [first];
  const balancer = await startBalancer(live);
  const js = await openPage(env.browser, { url: balancer.url });
  await js.evaluate(countSockets);
  const jsId = await join(js, "retried", { resume: true });
  const context = await env.browser.newContext();
  const wasm = await context.newPage();
  await wasm.addInitScript(countSockets);
  await wasm.goto(`${balancer.url}/demo/rust-chat?room=retried&resumable`);
  await wasm.waitForFunction(() => window.wasmRoom !== undefined || window.joinError !== undefined, null, { timeout: 20000 });
  const wasmId = await wasm.evaluate(() => window.wasmRoom.id);
  await waitFor(js, (id) => window.log.connects.includes(id), wasmId);

  const old = env.nodes.shift();
  await old.stop();
  await new Promise((r) => setTimeout(r, 600));
  live.splice(0, live.length, ...others);
  env.nodes.push(await startServer(nodeArgs()));

  // Both moved, after at least one refused or failed attempt each: same ids, nobody left.
  await js.waitForFunction(() => window.sockets >= 3 && window.room.connection !== undefined, null, { timeout: 20000 });
  await wasm.waitForFunction(() => window.sockets >= 3, null, { timeout: 20000 });
  await js.evaluate((id) => window.room.send(id, "reliable", "after the retries"), wasmId);
  await wasm.waitForFunction(() => window.events.some((e) => e.type === "message" && e.data === "after the retries"), null, { timeout: 20000 });
  const late = await openPage(env.browser, { url: balancer.url });
  const lateId = await join(late, "retried", { resume: true });
  await waitFor(js, (id) => window.log.connects.includes(id), lateId);
  await wasm.waitForFunction((id) => window.events.some((e) => e.type === "connect" && e.peer === id), lateId, { timeout: 20000 });
  const jsState = await js.evaluate(() => ({ id: window.room.id, leaves: window.log.leaves, closes: window.log.closes, errors: window.log.errors }));
  assert.deepEqual(jsState, { id: jsId, leaves: [], closes: [], errors: [] });
  const wasmState = await wasm.evaluate(() => ({ id: window.wasmRoom.id, ended: window.events.filter((e) => ["leave", "close", "error"].includes(e.type)) }));
  assert.deepEqual(wasmState, { id: wasmId, ended: [] });
  assert.deepEqual([...js.problems, ...late.problems], []);
  await context.close();
  balancer.close();
});
