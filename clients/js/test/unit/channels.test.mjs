import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_CHANNELS, channelSpecs, channelsFingerprint, dataChannelInit } from "../../dist/channels.js";

test("default channels: reliable (id 0, chunked) and unreliable (id 1, unordered, no retransmits)", () => {
  const specs = channelSpecs(DEFAULT_CHANNELS);
  assert.deepEqual(specs, [
    { name: "reliable", id: 0, ordered: true, chunked: true },
    { name: "unreliable", id: 1, ordered: false, chunked: false, maxRetransmits: 0 },
  ]);
  assert.deepEqual(dataChannelInit(specs[1]), { negotiated: true, id: 1, ordered: false, maxRetransmits: 0 });
});

test("ids follow the sorted names, so declaration order does not matter", () => {
  const a = channelSpecs({ zeta: {}, alpha: { maxPacketLifeTime: 100 }, mid: { ordered: false } });
  const b = channelSpecs({ mid: { ordered: false }, zeta: {}, alpha: { maxPacketLifeTime: 100 } });
  assert.deepEqual(a, b);
  assert.deepEqual(a.map((s) => [s.name, s.id, s.chunked]), [["alpha", 0, false], ["mid", 1, false], ["zeta", 2, true]]);
  assert.equal(channelsFingerprint(a), channelsFingerprint(b));
  assert.notEqual(channelsFingerprint(a), channelsFingerprint(channelSpecs({ zeta: {}, alpha: { maxPacketLifeTime: 101 }, mid: { ordered: false } })));
});

test("invalid declarations are refused", () => {
  for (const bad of [{}, null, { "a b": {} }, { a: { ordered: "yes" } }, { a: { maxRetransmits: -1 } }, { a: { maxRetransmits: 1.5 } },
    { a: { maxPacketLifeTime: 70000 } }, { a: { maxRetransmits: 0, maxPacketLifeTime: 0 } }, { a: 5 },
    Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`c${i}`, {}]))]) {
    assert.throws(() => channelSpecs(bad), { code: "invalid_options" });
  }
});
