// Chromium's default: host addresses hidden behind mDNS names. Two pages still connect, and
// Switchboard's built-in STUN server, which `welcome` hands out as the default ICE server,
// supplies server-reflexive candidates.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { useServerAndBrowser, join, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after }, [], { mdns: true });

test("with mDNS-hidden host candidates, peers connect and the built-in STUN server supplies reflexive candidates", async () => {
  const pages = [await openPage(env.browser, env.server), await openPage(env.browser, env.server)];
  const ids = [await join(pages[0], "mdns"), await join(pages[1], "mdns")];
  await waitFor(pages[0], (id) => window.log.connects.includes(id), ids[1]);
  // Gathering goes on after the connection opens: wait for the STUN answer to show up.
  const { iceServers, candidates } = await pages[0].evaluate(async (other) => {
    const deadline = Date.now() + 10000;
    for (;;) {
      const stats = await window.room.connection(other).rtc.getStats();
      const candidates = [];
      stats.forEach((s) => {
        if (s.type === "local-candidate") candidates.push({ type: s.candidateType, address: s.address ?? "" });
      });
      if (candidates.some((c) => c.type === "srflx") || Date.now() > deadline) return { iceServers: window.room.iceServers, candidates };
      await new Promise((r) => setTimeout(r, 100));
    }
  }, ids[1]);
  assert.equal(iceServers.length, 1);
  assert.match(String(iceServers[0].urls), /^stun:127\.0\.0\.1:\d+$/);
  assert.ok(candidates.some((c) => c.type === "srflx" && c.address === "127.0.0.1"), JSON.stringify(candidates));
  assert.ok(candidates.filter((c) => c.type === "host").every((c) => !/^\d/.test(c.address)), "host addresses hidden");
  await pages[0].evaluate((other) => window.room.send(other, "reliable", "through STUN"), ids[1]);
  await waitFor(pages[1], () => window.log.messages.reliable?.[0]?.text === "through STUN");
});
