// A peer whose page closes or whose renderer dies is reported as left, once, within the
// server's idle timeout.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { useServerAndBrowser, join, launchBrowser, openPage, waitFor } from "./harness.mjs";

const IDLE_TIMEOUT_MS = 2000;
const env = useServerAndBrowser({ before, after }, ["--heartbeat-interval-ms", "500", "--idle-timeout-ms", String(IDLE_TIMEOUT_MS)]);

async function connectedTrio(room, browsers = [env.browser, env.browser, env.browser]) {
  const pages = [];
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const page = await openPage(browsers[i], env.server);
    ids.push(await join(page, room));
    pages.push(page);
  }
  for (const [i, page] of pages.entries()) {
    await waitFor(page, (others) => others.every((id) => window.log.connects.includes(id)), ids.filter((_, j) => j !== i));
  }
  return { pages, ids };
}

async function assertLeftOnce(observers, goneId, since) {
  for (const page of observers) {
    await waitFor(page, (id) => window.log.leaves.some((l) => l.id === id), goneId, IDLE_TIMEOUT_MS + 1000);
  }
  // Give every other source (hub presence, channel close, ICE) time to report it again.
  await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS + 500));
  for (const page of observers) {
    const leaves = await page.evaluate((id) => window.log.leaves.filter((l) => l.id === id), goneId);
    assert.equal(leaves.length, 1, `one leave event, got ${JSON.stringify(leaves)}`);
    assert.ok(leaves[0].at - since < IDLE_TIMEOUT_MS + 500, `seen after ${leaves[0].at - since} ms`);
    const remaining = await page.evaluate(() => window.room.peers.map((p) => p.id));
    assert.ok(!remaining.includes(goneId));
    assert.equal(await page.evaluate(() => window.room.peers.filter((p) => p.connected).length), 1);
  }
}

test("closing a page: the others see it leave once, promptly", async () => {
  const { pages, ids } = await connectedTrio("close-page");
  const since = Date.now();
  await pages[2].close();
  await assertLeftOnce(pages.slice(0, 2), ids[2], since);
  // The survivors still talk to each other.
  await pages[0].evaluate((id) => window.room.send(id, "reliable", "still here"), ids[1]);
  await waitFor(pages[1], () => window.log.messages.reliable?.some((m) => m.text === "still here"));
});

test("a crashed renderer: the others see it leave once, promptly", async () => {
  const { pages, ids } = await connectedTrio("crash-page");
  const cdp = await pages[2].context().newCDPSession(pages[2]);
  const since = Date.now();
  cdp.send("Page.crash").catch(() => {});
  await assertLeftOnce(pages.slice(0, 2), ids[2], since);
});

test("send to a peer that left throws a clear error", async () => {
  const { pages, ids } = await connectedTrio("send-after-leave");
  await pages[2].close();
  await waitFor(pages[0], (id) => window.log.leaves.some((l) => l.id === id), ids[2]);
  const error = await pages[0].evaluate((id) => {
    try {
      window.room.send(id, "reliable", "anyone?");
      return null;
    } catch (e) {
      return { name: e.name, code: e.code };
    }
  }, ids[2]);
  assert.deepEqual(error, { name: "SwitchboardError", code: "unknown_peer" });
  const afterClose = await pages[0].evaluate((id) => {
    window.room.close();
    try {
      window.room.send(id, "reliable", "x");
      return null;
    } catch (e) {
      return e.code;
    }
  }, ids[1]);
  assert.equal(afterClose, "room_closed");
});

/** Every process in the tree under the browser started with `marker` (Linux /proc). */
function processTree(marker) {
  const pid = readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .find((entry) => {
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
        return cmdline.includes(`--switchboard-test-marker=${marker}`) && !cmdline.some((a) => a.startsWith("--type="));
      } catch {
        return false;
      }
    });
  assert.ok(pid, "the frozen browser's process");
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // the process ended meanwhile
    }
  }
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]) ?? []));
  return all;
}

test("a peer whose machine goes silent (no FIN, no close): the others see it leave once, within the idle timeout", async () => {
  // The third peer runs in its own browser, which is then frozen whole (SIGSTOP): its sockets
  // stay open but nothing answers, as when a network cable is pulled.
  const marker = `frozen-${process.pid}`;
  const frozen = await launchBrowser({ marker });
  try {
    const { pages, ids } = await connectedTrio("silent-peer", [env.browser, env.browser, frozen]);
    const pids = processTree(marker);
    const since = Date.now();
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    try {
      await assertLeftOnce(pages.slice(0, 2), ids[2], since);
      const reasons = await pages[0].evaluate((id) => window.log.leaves.filter((l) => l.id === id).map((l) => l.reason), ids[2]);
      assert.ok(["timeout", "connection_lost"].includes(reasons[0]), reasons[0]);
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGCONT");
        } catch {
          // gone
        }
      }
    }
  } finally {
    await frozen.close();
  }
});
