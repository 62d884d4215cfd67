// The WebSocket fallback's client side against a real WebSocket server in this process (the `ws`
// package): messages both ways on both channels, a hostile server's garbage reported as errors
// without ending the connection, goodbye and refusals as clear outcomes.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { channelSpecs, DEFAULT_CHANNELS } from "../../dist/channels.js";
import { encodeFrames, goodbyeFrame, Reassembler } from "../../dist/framing.js";
import { SocketConnection, socketMessage } from "../../dist/socket-connection.js";

const limits = { frameBytes: 1024, maxMessageBytes: 1 << 20, maxBufferedBytes: 1 << 22, bufferedHighBytes: 1 << 20, connectTimeoutMs: 2000, disconnectTimeoutMs: 1000, maxQueuedCandidates: 0 };
const specs = channelSpecs(DEFAULT_CHANNELS);
const servers = [];
after(() => servers.forEach((s) => s.close()));

/** A server on a free port; `onSocket` gets each socket. Resolves to its URL. */
async function serve(onSocket, options = {}) {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, ...options });
  servers.push(server);
  server.on("connection", onSocket);
  await new Promise((r) => server.on("listening", r));
  return `ws://127.0.0.1:${server.address().port}/connect/ws`;
}

function record(connection) {
  const log = { messages: [], errors: [], closes: [] };
  connection.on("message", ({ channel, data }) => log.messages.push([channel, typeof data === "string" ? data : data.byteLength]));
  connection.on("error", ({ error }) => log.errors.push(error.code));
  connection.on("close", (event) => log.closes.push(event));
  return log;
}

const until = async (predicate) => {
  const deadline = Date.now() + 3000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

test("messages go both ways on both channels, chunked above frameBytes; channelInfo says reliable", async () => {
  const received = [];
  const url = await serve((socket) => {
    const reassemblers = [new Reassembler(1 << 20), new Reassembler(1 << 20)];
    socket.on("message", (bytes) => {
      const message = reassemblers[bytes[0]].push(new Uint8Array(bytes.subarray(1)));
      if (message === null) return;
      received.push([bytes[0], typeof message === "string" ? message : message.byteLength]);
      // Echo it back on the same channel.
      for (const frame of encodeFrames(message, { frameBytes: 1024, chunked: bytes[0] === 0, maxMessageBytes: 1 << 20 })) socket.send(socketMessage(bytes[0], frame));
    });
  });
  const connection = await SocketConnection.open(url, specs, limits, WebSocket);
  const log = record(connection);
  assert.equal(connection.transport, "websocket");
  assert.deepEqual(connection.channelInfo("unreliable"), { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: 1 });
  connection.send("reliable", "hello");
  connection.send("reliable", new Uint8Array(5000));
  connection.send("unreliable", new Uint8Array(3));
  assert.throws(() => connection.send("unreliable", new Uint8Array(5000)), { code: "message_too_big" });
  assert.throws(() => connection.send("voice", "x"), { code: "unknown_channel" });
  await until(() => log.messages.length === 3);
  assert.deepEqual(received, [[0, "hello"], [0, 5000], [1, 3]]);
  assert.deepEqual(log.messages, [["reliable", "hello"], ["reliable", 5000], ["unreliable", 3]]);
  connection.close();
  assert.throws(() => connection.send("reliable", "late"), { code: "peer_not_connected" });
});

test("a hostile server's garbage is reported, the connection goes on; goodbye ends it with the reason", async () => {
  // (After a moment: in Node, `ws` can deliver a first message in the same tick as `open`, before
  // the test's handlers are attached; browsers deliver each in a task of its own.)
  const url = await serve((socket) => setTimeout(() => {
    socket.send("not binary");
    socket.send(new Uint8Array([9, 0, 1])); // unknown channel
    socket.send(new Uint8Array([])); // empty
    socket.send(new Uint8Array([0, 42])); // unknown frame kind
    socket.send(socketMessage(1, encodeFrames("still fine", { frameBytes: 1024, chunked: false, maxMessageBytes: 1024 })[0]));
    socket.send(socketMessage(0, goodbyeFrame("kicked for testing")));
  }, 50));
  const connection = await SocketConnection.open(url, specs, limits, WebSocket);
  const log = record(connection);
  await until(() => log.closes.length === 1);
  assert.deepEqual(log.errors, ["bad_frame", "bad_frame", "bad_frame", "bad_frame"]);
  assert.deepEqual(log.messages, [["unreliable", "still fine"]]);
  assert.deepEqual(log.closes, [{ reason: "goodbye", detail: "kicked for testing" }]);
});

test("the server's refusal and a socket that drops are clear outcomes", async () => {
  const full = await serve(() => {}, { verifyClient: (_, refuse) => refuse(false, 503, "Service Unavailable") });
  await assert.rejects(SocketConnection.open(full, specs, limits, WebSocket), { code: "connection_failed" });
  await assert.rejects(SocketConnection.open("ws://127.0.0.1:1/connect/ws", specs, limits, WebSocket), { code: "connection_failed" });
  const dropping = await serve((socket) => setTimeout(() => socket.terminate(), 50));
  const connection = await SocketConnection.open(dropping, specs, limits, WebSocket);
  const log = record(connection);
  await until(() => log.closes.length === 1);
  assert.deepEqual(log.closes, [{ reason: "connection_lost" }]);
  const closing = await serve((socket) => setTimeout(() => socket.close(1001, "timeout"), 50));
  const timedOut = record(await SocketConnection.open(closing, specs, limits, WebSocket));
  await until(() => timedOut.closes.length === 1);
  assert.deepEqual(timedOut.closes, [{ reason: "disconnected", detail: "timeout" }]);
});
