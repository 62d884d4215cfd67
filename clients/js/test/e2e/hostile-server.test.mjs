// The client in Chromium against a server that misbehaves: garbage, wrong shapes, closing in
// the middle of the handshake, silence. Every case ends in a clear SwitchboardError (a rejected
// join or an `error` / `close` event), never an unhandled rejection or a page error.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { WebSocketServer } from "ws";
import { launchBrowser, openPage, startServer } from "./harness.mjs";

const PEER = "0123456789abcdef0123456789abcdef";
const OTHER = "fedcba9876543210fedcba9876543210";
const WELCOME = {
  type: "welcome",
  version: 1,
  id: PEER,
  room: "r",
  peers: [],
  ice_servers: [],
  heartbeat_ms: 5000,
  idle_timeout_ms: 15000,
  max_message_bytes: 65536,
  room_info: { kind: "named", topology: "mesh", capacity: 128, host: PEER, host_leaves: "migrate", public: false },
};

let switchboard;
let browser;
let page;
let hostile;
let behaviour = () => {};

before(async () => {
  switchboard = await startServer();
  browser = await launchBrowser();
  page = await openPage(browser, switchboard);
  const http = createServer((_, res) => res.end());
  const wss = new WebSocketServer({ noServer: true });
  http.on("upgrade", (request, socket, head) => {
    if (request.url.includes("drop-before-upgrade")) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => behaviour(ws, request));
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  hostile = { http, url: `ws://127.0.0.1:${http.address().port}` };
});
after(async () => {
  hostile?.http.close();
  await browser?.close();
  await switchboard?.stop();
});

/** Joins the hostile server from the page; returns how the join ended. */
function joinHostile(path, options = {}) {
  return page.evaluate(
    async ({ url, options }) => {
      try {
        const room = await window.sb.joinRoom(url, options);
        window.hostileRoom = room;
        window.hostileLog = { errors: [], closes: [], joins: [] };
        room.on("error", ({ error }) => window.hostileLog.errors.push(error.code));
        room.on("close", ({ code }) => window.hostileLog.closes.push(code));
        room.on("join", ({ peer }) => window.hostileLog.joins.push(peer.id));
        return { joined: room.id };
      } catch (error) {
        return { name: error.name, code: error.code, message: error.message };
      }
    },
    { url: `${hostile.url}/${path}`, options },
  );
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function assertNoProblems() {
  await sleep(200);
  assert.deepEqual(page.problems, []);
}

const refusals = [
  ["garbage text instead of welcome", (ws) => ws.send("this is not json{"), "bad_server_message"],
  ["binary frame on a JSON connection", (ws) => ws.send(Buffer.from([0x81, 0xa4])), "bad_server_message"],
  ["a JSON array", (ws) => ws.send("[1,2,3]"), "bad_server_message"],
  ["welcome with a malformed id", (ws) => ws.send(JSON.stringify({ ...WELCOME, id: "nope" })), "bad_server_message"],
  ["welcome whose peers is not a list", (ws) => ws.send(JSON.stringify({ ...WELCOME, peers: "x" })), "bad_server_message"],
  ["welcome with a bad ICE server", (ws) => ws.send(JSON.stringify({ ...WELCOME, ice_servers: [{ urls: 5 }] })), "bad_server_message"],
  ["another message before welcome", (ws) => ws.send(JSON.stringify({ type: "pong", nonce: 1 })), "bad_server_message"],
  ["an error message", (ws) => ws.send(JSON.stringify({ type: "error", code: "room_full", message: "full" })), "room_full"],
  ["close with a reason mid-handshake", (ws) => ws.close(4005, "room_full"), "room_full"],
  ["close without a reason mid-handshake", (ws) => ws.close(1011), "connection_closed"],
  ["TCP reset mid-handshake", (ws) => ws.terminate(), "connection_closed"],
];

for (const [name, act, code] of refusals) {
  test(`join is refused with ${code}: ${name}`, async () => {
    behaviour = act;
    const result = await joinHostile("room");
    assert.equal(result.name, "SwitchboardError", JSON.stringify(result));
    assert.equal(result.code, code, result.message);
    await assertNoProblems();
  });
}

test("join is refused: the connection drops before the upgrade", async () => {
  const result = await joinHostile("drop-before-upgrade");
  assert.deepEqual([result.name, result.code], ["SwitchboardError", "connection_closed"]);
  await assertNoProblems();
});

test("join is refused: silence until joinTimeoutMs", async () => {
  behaviour = () => {};
  const result = await joinHostile("room", { joinTimeoutMs: 300 });
  assert.deepEqual([result.name, result.code], ["SwitchboardError", "join_timeout"]);
  await assertNoProblems();
});

test("join is refused: invalid options, before any connection", async () => {
  const results = await page.evaluate(async (url) => {
    const attempts = [
      [url, { channels: { "bad name": {} } }],
      [url, { channels: { c: { maxRetransmits: 1, maxPacketLifeTime: 1 } } }],
      [url, { channels: {} }],
      [url, { user: "no spaces" }],
      [url, { encoding: "xml" }],
      [url, { frameBytes: -1 }],
      ["ftp://example/", {}],
    ];
    const codes = [];
    for (const [u, options] of attempts) {
      try {
        await window.sb.joinRoom(u, options);
        codes.push("joined");
      } catch (e) {
        codes.push(e.code);
      }
    }
    return codes;
  }, `${hostile.url}/room`);
  assert.deepEqual(results, Array(7).fill("invalid_options"));
  await assertNoProblems();
});

test("after welcome: garbage becomes error events and the room keeps working", async () => {
  behaviour = (ws) => {
    ws.send(JSON.stringify(WELCOME));
    setTimeout(() => {
      ws.send("garbage");
      ws.send(JSON.stringify({ type: "peer_joined", id: "short" }));
      ws.send(JSON.stringify({ type: "signal", from: OTHER, data: { type: "offer" } }));
      ws.send(JSON.stringify({ type: "some_future_type", x: 1 }));
      ws.send(JSON.stringify({ type: "peer_joined", id: OTHER }));
      ws.send(JSON.stringify({ type: "signal", from: OTHER, data: { type: "nonsense" } }));
      ws.send(JSON.stringify({ type: "signal", from: OTHER, data: 42 }));
      ws.send(JSON.stringify({ type: "peer_left", id: OTHER, reason: "closed" }));
      ws.send(JSON.stringify({ type: "peer_left", id: OTHER, reason: "closed" }));
    }, 100);
  };
  const result = await joinHostile("room");
  assert.equal(result.joined, PEER);
  await sleep(600);
  const log = await page.evaluate(() => window.hostileLog);
  assert.deepEqual(log.errors, ["bad_server_message", "bad_server_message", "bad_signal", "bad_signal"]);
  assert.deepEqual(log.joins, [OTHER]);
  assert.deepEqual(log.closes, []);
  await page.evaluate(() => window.hostileRoom.close());
  await assertNoProblems();
});

test("after welcome: the server vanishing closes the room with a clear code", async () => {
  behaviour = (ws) => {
    ws.send(JSON.stringify(WELCOME));
    setTimeout(() => ws.terminate(), 200);
  };
  await joinHostile("room");
  await sleep(600);
  assert.deepEqual(await page.evaluate(() => window.hostileLog.closes), ["connection_closed"]);
  const code = await page.evaluate(() => {
    try {
      window.hostileRoom.broadcast("reliable", "x");
    } catch (e) {
      return e.code;
    }
  });
  assert.equal(code, "room_closed");
  await assertNoProblems();
});

test("after welcome: a server that stops answering heartbeats is detected", async () => {
  behaviour = (ws) => {
    ws.send(JSON.stringify({ ...WELCOME, heartbeat_ms: 100, idle_timeout_ms: 400 }));
    // Never answers the client's pings.
  };
  await joinHostile("room");
  await sleep(1200);
  assert.deepEqual(await page.evaluate(() => window.hostileLog.closes), ["server_timeout"]);
  await assertNoProblems();
});
