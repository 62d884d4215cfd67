// Three Chromium pages in one room form a full mesh and exchange messages on both channels.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { installPatterns, useServerAndBrowser, join, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after });

async function mesh(room, count) {
  const pages = [];
  const ids = [];
  for (let i = 0; i < count; i++) {
    const page = await openPage(env.browser, env.server);
    ids.push(await join(page, room));
    pages.push(page);
  }
  for (const [i, page] of pages.entries()) {
    const others = ids.filter((_, j) => j !== i);
    await waitFor(page, (others) => others.every((id) => window.log.connects.includes(id)), others);
  }
  return { pages, ids };
}

test("three pages form a full mesh and every pair exchanges reliable messages in order, also over 64 KiB", async () => {
  const { pages, ids } = await mesh("mesh", 3);
  for (const [i, page] of pages.entries()) {
    const peers = await page.evaluate(() => window.room.peers.map((p) => ({ id: p.id, connected: p.connected })));
    assert.deepEqual(
      peers.map((p) => p.id).sort(),
      ids.filter((_, j) => j !== i).sort(),
      `page ${i} sees the two others`,
    );
    assert.ok(peers.every((p) => p.connected));
  }
  const COUNT = 300;
  // Every page sends COUNT messages to every other page: text, with a binary message of
  // 70-200 KiB (more than one SCTP message) every 50th, whose bytes encode its index.
  await Promise.all(
    pages.map((page) =>
      page.evaluate((COUNT) => {
        for (const peer of window.room.peers) {
          for (let n = 0; n < COUNT; n++) {
            if (n % 50 === 25) {
              const size = 70 * 1024 + n * 450;
              const bytes = new Uint8Array(size);
              for (let k = 0; k < size; k++) bytes[k] = (n + k) & 0xff;
              window.room.send(peer.id, "reliable", bytes);
            } else {
              window.room.send(peer.id, "reliable", `message ${n} ✓`);
            }
          }
        }
      }, COUNT),
    ),
  );
  for (const [i, page] of pages.entries()) {
    const expected = (pages.length - 1) * COUNT;
    await waitFor(page, (n) => (window.log.messages.reliable?.length ?? 0) >= n, expected, 30000);
    const messages = await page.evaluate(() => window.log.messages.reliable);
    assert.equal(messages.length, expected, `page ${i} got exactly what was sent`);
    for (const sender of ids.filter((_, j) => j !== i)) {
      const fromSender = messages.filter((m) => m.from === sender);
      assert.equal(fromSender.length, COUNT);
      fromSender.forEach((m, n) => {
        if (n % 50 === 25) {
          const size = 70 * 1024 + n * 450;
          assert.equal(m.bytes, size, `message ${n} is whole`);
          assert.deepEqual(m.head, Array.from({ length: 8 }, (_, k) => (n + k) & 0xff));
          assert.equal(m.tail, (n + size - 1) & 0xff);
        } else {
          assert.equal(m.text, `message ${n} ✓`, `message ${n} in order`);
        }
      });
    }
    assert.deepEqual(await page.evaluate(() => window.log.errors), []);
    assert.deepEqual(page.problems, []);
  }
});

test("the unreliable channel is negotiated unordered with no retransmits on both ends", async () => {
  const { pages, ids } = await mesh("channels", 2);
  for (const [i, page] of pages.entries()) {
    const other = ids[1 - i];
    const info = await page.evaluate((other) => ({
      unreliable: window.room.channelInfo(other, "unreliable"),
      reliable: window.room.channelInfo(other, "reliable"),
      sctp: window.room.connection(other).rtc.sctp?.state,
    }), other);
    assert.equal(info.sctp, "connected");
    assert.deepEqual(info.unreliable, { ordered: false, maxRetransmits: 0, maxPacketLifeTime: null, id: 1 });
    assert.deepEqual(info.reliable, { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: 0 });
  }
  // Binary and text both ways on the unreliable channel (loopback loses nothing in practice,
  // but only delivery is asserted, never order).
  await pages[0].evaluate((other) => {
    for (let n = 0; n < 20; n++) window.room.send(other, "unreliable", new Uint8Array([n]));
    window.room.send(other, "unreliable", "text");
  }, ids[1]);
  await waitFor(pages[1], () => (window.log.messages.unreliable?.length ?? 0) >= 15);
});

test("two rooms do not see each other", async () => {
  const a = await mesh("room-a", 2);
  const b = await mesh("room-b", 2);
  await new Promise((r) => setTimeout(r, 500));
  for (const page of [...a.pages, ...b.pages]) {
    const seen = await page.evaluate(() => window.log.joins);
    assert.equal(seen.length, 1);
  }
  assert.ok(a.ids.every((id) => !b.ids.includes(id)));
  assert.equal(await a.pages[0].evaluate(() => window.room.broadcast("reliable", "only for a")), 1);
  await waitFor(a.pages[1], () => window.log.messages.reliable?.length === 1);
  await new Promise((r) => setTimeout(r, 300));
  for (const page of b.pages) assert.equal(await page.evaluate(() => window.log.messages.reliable), undefined);
});

test("a burst of large reliable messages between two pages arrives whole (12 x 1 MiB and 16 MiB); past maxBufferedBytes send throws", async () => {
  const { pages, ids } = await mesh("burst", 2);
  for (const page of pages) await installPatterns(page);
  const sizes = [...Array(12).fill(1024 * 1024), 16 * 1024 * 1024];
  const received = pages[1].evaluate(async (sizes) => {
    const checked = [];
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 120_000);
      window.room.on("message", ({ channel, data }) => {
        const seed = checked.length;
        checked.push(channel === "reliable" && typeof data !== "string" && data.byteLength === sizes[seed] && window.isPattern(seed, data));
        if (checked.length === sizes.length) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    return { count: checked.length, bad: checked.flatMap((ok, i) => (ok ? [] : [i])) };
  }, sizes);
  // All sent at once, 28 MiB: far past the browser's own buffer; the client queues and drains.
  // One more 8 MiB message would take what waits past maxBufferedBytes (32 MiB): refused, and
  // nothing already accepted is lost.
  const refused = await pages[0].evaluate(({ sizes, to }) => {
    sizes.forEach((size, seed) => window.room.send(to, "reliable", window.pattern(seed, size)));
    try {
      window.room.send(to, "reliable", new Uint8Array(8 * 1024 * 1024));
      return "accepted";
    } catch (error) {
      return error.code;
    }
  }, { sizes, to: ids[1] });
  assert.equal(refused, "send_queue_full");
  assert.deepEqual(await received, { count: sizes.length, bad: [] });
  const errors = await Promise.all(pages.map((page) => page.evaluate(() => window.log.errors)));
  assert.deepEqual(errors, [[], []]);
});
