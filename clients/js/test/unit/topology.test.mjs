import assert from "node:assert/strict";
import { test } from "node:test";
import { roleFor, shouldLink } from "../../dist/topology.js";

test("mesh links everyone; star links the host to each client and never two clients", () => {
  assert.equal(shouldLink("a", "b", { topology: "mesh", host: "h" }), true);
  assert.equal(shouldLink("a", "a", { topology: "mesh", host: "a" }), false);
  assert.equal(shouldLink("h", "a", { topology: "star", host: "h" }), true);
  assert.equal(shouldLink("a", "h", { topology: "star", host: "h" }), true);
  assert.equal(shouldLink("a", "b", { topology: "star", host: "h" }), false);
});

test("who offers: the present peer to a newcomer, a resumed peer to everyone, a new host to its clients", () => {
  assert.equal(roleFor("present-at-welcome", false), "answerer");
  assert.equal(roleFor("present-at-welcome", true), "offerer");
  assert.equal(roleFor("joined-later", false), "offerer");
  assert.equal(roleFor("new-host-me", false), "offerer");
  assert.equal(roleFor("new-host-them", false), "answerer");
});
