import assert from "node:assert/strict";
import { test } from "node:test";
import { Membership } from "../../dist/membership.js";
import { Emitter } from "../../dist/emitter.js";

test("each peer joins once and leaves once, and cannot come back under the same id", () => {
  const m = new Membership();
  assert.equal(m.join({ id: "a" }), true);
  assert.equal(m.join({ id: "a" }), false);
  assert.equal(m.join({ id: "b", name: "bob" }), true);
  assert.deepEqual(m.peers().map((p) => p.id), ["a", "b"]);
  assert.deepEqual(m.leave("a"), { id: "a" });
  assert.equal(m.leave("a"), null);
  assert.equal(m.join({ id: "a" }), false);
  assert.deepEqual(m.clear(), [{ id: "b", name: "bob" }]);
  assert.equal(m.leave("b"), null);
});

test("a throwing handler does not stop the others; its exception is reported", () => {
  const seen = [];
  const e = new Emitter((error) => seen.push(`reported ${error.message}`));
  e.on("x", () => {
    throw new Error("handler bug");
  });
  const off = e.on("x", (v) => seen.push(v));
  e.emit("x", 1);
  off();
  e.emit("x", 2);
  assert.deepEqual(seen, ["reported handler bug", 1, "reported handler bug"]);
});
