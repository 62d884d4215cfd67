// Chromium's default: host addresses hidden behind mDNS names. Two pages still connect, with
// Switchboard's built-in STUN server as the ICE server `welcome` hands out. (Whether Chromium
// gathers a server-reflexive candidate from a loopback STUN server varies from run to run, so
// that is not asserted; the STUN server itself is tested with a real client in Rust.)
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { useServerAndBrowser, join, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after }, [], { mdns: true });

test("with mDNS-hidden host candidates, peers connect; the built-in STUN server is their ICE server", async () => {
  const pages = [await openPage(env.browser, env.server), await openPage(env.browser, env.server)];
  const ids = [await join(pages[0], "mdns"), await join(pages[1], "mdns")];
  await waitFor(pages[0], (id) => window.log.connects.includes(id), ids[1]);
  const { iceServers, hosts } = await pages[0].evaluate(async (other) => {
    const stats = await window.room.connection(other).rtc.getStats();
    const hosts = [];
    stats.forEach((s) => {
      if (s.type === "local-candidate" && s.candidateType === "host") hosts.push(s.address ?? "");
    });
    return { iceServers: window.room.iceServers, hosts };
  }, ids[1]);
  assert.equal(iceServers.length, 1);
  assert.match(String(iceServers[0].urls), /^stun:127\.0\.0\.1:\d+$/);
  assert.ok(hosts.length > 0 && hosts.every((address) => !/^\d/.test(address)), `host addresses hidden: ${JSON.stringify(hosts)}`);
  await pages[0].evaluate((other) => window.room.send(other, "reliable", "with mdns"), ids[1]);
  await waitFor(pages[1], () => window.log.messages.reliable?.[0]?.text === "with mdns");
});
