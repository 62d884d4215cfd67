import assert from "node:assert/strict";
import { test } from "node:test";
import { encode } from "@msgpack/msgpack";
import { decodeServerMessage, encodeClientMessage, roomUrl } from "../../dist/signaling.js";

const ID = "6f1c0e7d9a2b4c8e9f00112233445566";
const WELCOME = {
  type: "welcome", version: 1, id: ID, room: "lobby", name: "alice",
  peers: [{ id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9", name: "bob" }, { id: "ffeeddccbbaa99887766554433221100" }],
  ice_servers: [{ urls: ["stun:127.0.0.1:3478"] }], heartbeat_ms: 5000, idle_timeout_ms: 15000, max_message_bytes: 65536,
  room_info: { kind: "named", topology: "mesh", capacity: 128, host: "0a1b2c3d4e5f60718293a4b5c6d7e8f9", host_leaves: "migrate", public: false },
};

test("room URLs: schemes, relative paths, version, encoding and user; other parameters kept", () => {
  assert.equal(roomUrl("ws://h:1/ws/a", undefined, { encoding: "json" }), "ws://h:1/ws/a?v=1&enc=json");
  assert.equal(roomUrl("https://h/ws/a?token=x", undefined, { encoding: "msgpack", user: "bo.b" }), "wss://h/ws/a?token=x&v=1&enc=msgpack&user=bo.b");
  assert.equal(roomUrl("/ws/a", "http://h:8080/demo/chat", { encoding: "json" }), "ws://h:8080/ws/a?v=1&enc=json");
  assert.throws(() => roomUrl("ftp://h/", undefined, { encoding: "json" }), { code: "invalid_options" });
  assert.throws(() => roomUrl("not a url", undefined, { encoding: "json" }), { code: "invalid_options" });
  assert.throws(() => roomUrl("ws://h/ws/a", undefined, { encoding: "json", user: "x y" }), { code: "invalid_options" });
});

test("the welcome example of docs/protocol.md decodes in both encodings", () => {
  const json = decodeServerMessage(JSON.stringify(WELCOME), "json");
  assert.deepEqual(json, WELCOME);
  assert.deepEqual(decodeServerMessage(encode(WELCOME), "msgpack"), WELCOME);
});

test("client messages encode as the protocol says", () => {
  assert.equal(encodeClientMessage({ type: "ping", nonce: 42 }, "json"), '{"type":"ping","nonce":42}');
  assert.ok(encodeClientMessage({ type: "ping", nonce: 42 }, "msgpack") instanceof Uint8Array);
});

test("unknown message types are skipped, malformed ones refused", () => {
  assert.equal(decodeServerMessage('{"type":"from_the_future"}', "json"), null);
  const bad = [
    "", "{", "[]", "null", '{"type":5}', '{"type":"peer_joined","id":"XYZ"}', '{"type":"peer_left","id":"' + ID + '"}',
    '{"type":"signal","from":"' + ID + '"}', '{"type":"pong","nonce":"x"}', '{"type":"error"}',
    JSON.stringify({ ...WELCOME, heartbeat_ms: -1 }), JSON.stringify({ ...WELCOME, peers: [{ id: ID, name: 7 }] }),
  ];
  for (const frame of bad) assert.throws(() => decodeServerMessage(frame, "json"), { code: "bad_server_message" }, frame);
  assert.throws(() => decodeServerMessage(new Uint8Array([0xc1]), "msgpack"), { code: "bad_server_message" });
  assert.throws(() => decodeServerMessage(new Uint8Array([0x80]).buffer, "json"), { code: "bad_server_message" });
  assert.throws(() => decodeServerMessage('{"type":"pong","nonce":1}', "msgpack"), { code: "bad_server_message" });
});

test("lobby messages and welcome fields decode; malformed ones are refused", () => {
  const resumed = { ...WELCOME, resume_token: "00112233445566778899aabbccddeeff", resumed: true, peers: [{ id: ID, resumable: true }] };
  assert.deepEqual(decodeServerMessage(JSON.stringify(resumed), "json"), resumed);
  assert.deepEqual(decodeServerMessage(`{"type":"host_changed","host":"${ID}"}`, "json"), { type: "host_changed", host: ID });
  assert.deepEqual(decodeServerMessage('{"type":"room_started"}', "json"), { type: "room_started" });
  assert.deepEqual(decodeServerMessage('{"type":"room_updated","meta":{"round":2}}', "json"), { type: "room_updated", meta: { round: 2 } });
  for (const bad of [
    { ...WELCOME, room_info: undefined },
    { ...WELCOME, room_info: { ...WELCOME.room_info, topology: "ring" } },
    { ...WELCOME, resume_token: "short" },
  ]) {
    assert.throws(() => decodeServerMessage(JSON.stringify(bad), "json"), { code: "bad_server_message" });
  }
  assert.throws(() => decodeServerMessage('{"type":"host_changed","host":"x"}', "json"), { code: "bad_server_message" });
  assert.throws(() => decodeServerMessage('{"type":"room_updated","meta":[1]}', "json"), { code: "bad_server_message" });
  assert.equal(encodeClientMessage({ type: "kick", peer: ID }, "json"), `{"type":"kick","peer":"${ID}"}`);
});

test("room options become query parameters", () => {
  const url = roomUrl("/ws", "http://h/", { encoding: "json", params: { match: "4", key: "ctf", resumable: "true", meta: '{"a":1}' } });
  const parsed = new URL(url);
  assert.equal(parsed.searchParams.get("match"), "4");
  assert.equal(parsed.searchParams.get("meta"), '{"a":1}');
  assert.equal(parsed.searchParams.get("resumable"), "true");
});

test("ice_servers: fresh TURN credentials are decoded; a malformed list is a bad_server_message", () => {
  const fresh = { type: "ice_servers", ice_servers: [{ urls: ["turn:h:3478?transport=tcp"], username: "1800003600:ann", credential: "Cr6B=" }] };
  assert.deepEqual(decodeServerMessage(JSON.stringify(fresh), "json"), fresh);
  assert.deepEqual(decodeServerMessage(encode(fresh), "msgpack"), fresh);
  for (const bad of [{ type: "ice_servers" }, { type: "ice_servers", ice_servers: [{}] }, { type: "ice_servers", ice_servers: "turn:h" }]) {
    assert.throws(() => decodeServerMessage(JSON.stringify(bad), "json"), { code: "bad_server_message" });
  }
});
