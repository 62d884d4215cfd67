import assert from "node:assert/strict";
import { test } from "node:test";
import { Negotiation, parseSignal } from "../../dist/negotiation.js";

const candidate = (n) => ({ type: "candidate", candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 ${n} typ host`, sdpMid: "0" } });

test("the answerer waits for an offer with the same channels, and releases early candidates after it", () => {
  const n = new Negotiation("answerer", "0:reliable", 4);
  assert.deepEqual(n.receive(candidate(1)), []);
  assert.deepEqual(n.receive(candidate(2)), []);
  assert.deepEqual(n.receive({ type: "offer", sdp: "v=0", channels: "0:reliable" }), [{ kind: "accept-offer", sdp: "v=0" }]);
  assert.deepEqual(n.receive(candidate(3)), [], "still queued until the offer is applied");
  const released = n.remoteApplied();
  assert.deepEqual(released.map((s) => s.candidate.candidate.split(" ")[0]), ["candidate:1", "candidate:2", "candidate:3"]);
  assert.equal(n.stable, true);
  assert.deepEqual(n.receive(candidate(4)).map((s) => s.kind), ["add-candidate"]);
  assert.deepEqual(n.receive({ type: "candidate", candidate: null }), [{ kind: "add-candidate", candidate: null }]);
});

test("the offerer accepts an answer only after sending its offer, and only one", () => {
  const n = new Negotiation("offerer", "c", 4);
  assert.throws(() => n.receive({ type: "answer", sdp: "v=0" }), { code: "bad_signal" });
  n.offerSent();
  assert.deepEqual(n.receive({ type: "answer", sdp: "v=0" }), [{ kind: "accept-answer", sdp: "v=0" }]);
  assert.throws(() => n.receive({ type: "answer", sdp: "v=0" }), { code: "bad_signal" });
  assert.throws(() => n.receive({ type: "offer", sdp: "v=0", channels: "c" }), { code: "bad_signal" }, "no glare: offerers never take offers");
});

test("a second offer and a channel mismatch are refused", () => {
  const n = new Negotiation("answerer", "mine", 4);
  assert.throws(() => n.receive({ type: "offer", sdp: "v=0", channels: "theirs" }), { code: "channel_mismatch" });
  n.receive({ type: "offer", sdp: "v=0", channels: "mine" });
  assert.throws(() => n.receive({ type: "offer", sdp: "v=0", channels: "mine" }), { code: "bad_signal" });
});

test("candidates before the description are bounded", () => {
  const n = new Negotiation("answerer", "c", 2);
  n.receive(candidate(1));
  n.receive(candidate(2));
  assert.throws(() => n.receive(candidate(3)), { code: "bad_signal" });
});

test("malformed signals are refused with bad_signal", () => {
  for (const bad of [null, 1, "offer", [], {}, { type: "offer" }, { type: "offer", sdp: "" }, { type: "offer", sdp: "v=0" },
    { type: "answer", sdp: 5 }, { type: "answer", sdp: "x".repeat(70000) }, { type: "candidate", candidate: 5 },
    { type: "candidate", candidate: { sdpMid: "0" } }, { type: "renegotiate" }]) {
    assert.throws(() => parseSignal(bad), { code: "bad_signal" }, JSON.stringify(bad)?.slice(0, 60));
  }
  assert.deepEqual(parseSignal({ type: "candidate", candidate: { candidate: "c", extra: 1 } }), {
    type: "candidate",
    candidate: { candidate: "c", sdpMLineIndex: 0 },
  });
});
