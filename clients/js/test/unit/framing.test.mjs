import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeFrames, FrameKind, Reassembler } from "../../dist/framing.js";

const options = { frameBytes: 64, chunked: true, maxMessageBytes: 1 << 20 };

function roundTrip(payload, opts = options) {
  const frames = encodeFrames(payload, opts);
  const reassembler = new Reassembler(opts.maxMessageBytes);
  const out = [];
  for (const frame of frames) {
    assert.ok(frame.byteLength <= opts.frameBytes, "frame within frameBytes");
    const message = reassembler.push(frame);
    if (message !== null) out.push(message);
  }
  return { frames, out };
}

test("small messages are one frame with a kind byte", () => {
  assert.deepEqual([...encodeFrames("hi", options)[0]], [FrameKind.Text, 0x68, 0x69]);
  assert.deepEqual([...encodeFrames(new Uint8Array([7, 8]), options)[0]], [FrameKind.Binary, 7, 8]);
  assert.deepEqual([...encodeFrames(new ArrayBuffer(0), options)[0]], [FrameKind.Binary]);
});

test("every size around the chunk boundaries round-trips, text and binary", () => {
  for (let size = 0; size < 400; size++) {
    const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff);
    const { frames, out } = roundTrip(bytes);
    assert.equal(out.length, 1, `size ${size}`);
    assert.deepEqual(out[0], bytes);
    assert.equal(frames.length === 1, size + 1 <= 64, `size ${size} chunked only when needed`);
    const text = "é".repeat(size);
    assert.equal(roundTrip(text).out[0], text);
  }
});

test("typed array views send only their own bytes", () => {
  const backing = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const view = new Uint16Array(backing.buffer, 2, 2);
  assert.deepEqual([...roundTrip(view).out[0]], [3, 4, 5, 6]);
});

test("a multi-byte character split across chunks is reassembled intact", () => {
  const text = "x".repeat(58) + "😀".repeat(40);
  assert.equal(roundTrip(text).out[0], text);
});

test("unchunked channels refuse messages over one frame; everyone refuses over maxMessageBytes", () => {
  assert.throws(() => encodeFrames(new Uint8Array(64), { ...options, chunked: false }), { code: "message_too_big" });
  assert.equal(encodeFrames(new Uint8Array(63), { ...options, chunked: false }).length, 1);
  assert.throws(() => encodeFrames(new Uint8Array(101), { ...options, maxMessageBytes: 100 }), { code: "message_too_big" });
  assert.throws(() => encodeFrames(42, options), { code: "invalid_options" });
});

test("bad frames are refused with bad_frame and the next message still arrives", () => {
  const cases = [
    [new Uint8Array([])],
    [new Uint8Array([9, 1])],
    [new Uint8Array([FrameKind.Chunk, 1])],
    [new Uint8Array([FrameKind.FirstBinaryChunk, 0, 0])],
    [new Uint8Array([FrameKind.FirstBinaryChunk, 0xff, 0xff, 0xff, 0xff, 1])],
    [new Uint8Array([FrameKind.FirstBinaryChunk, 0, 0, 0, 2, 1]), new Uint8Array([FrameKind.Chunk, 1, 2])],
    [new Uint8Array([FrameKind.FirstBinaryChunk, 0, 0, 0, 9, 1]), new Uint8Array([FrameKind.Binary, 1])],
    [new Uint8Array([FrameKind.Text, 0xff, 0xfe])],
  ];
  for (const frames of cases) {
    const reassembler = new Reassembler(1000);
    assert.throws(() => frames.forEach((f) => reassembler.push(f)), { code: "bad_frame" }, `${frames.map((f) => [...f])}`);
    assert.equal(reassembler.push(new Uint8Array([FrameKind.Text, 0x6f, 0x6b])), "ok");
  }
});
