// Firefox ESR (puppeteer-core over WebDriver BiDi) next to Chromium (playwright-core): a Firefox
// page and a Chromium page in one room, Firefox to the server peer, and Firefox <-> Chromium
// pairing with compact codes only.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchFirefox, openFirefoxPage, waitForFirefox } from "./firefox.mjs";
import { installPatterns, join, launchBrowser, openPage, startEcho, startServer, waitFor, waitLine } from "./harness.mjs";

let server;
let echo;
let firefox;
let chromium;
before(async () => {
  server = await startServer();
  echo = await startEcho();
  firefox = await launchFirefox();
  chromium = await launchBrowser();
});
after(async () => {
  await firefox?.close();
  await chromium?.close();
  await echo?.stop();
  await server?.stop();
});

const isFirefox = (page) => typeof page.browserContext === "function"; // puppeteer; playwright has context()

/** waitFor for either kind of page (their waitForFunction take options and argument in another order). */
function until(page, predicate, arg, timeoutMs = 20000) {
  return isFirefox(page) ? waitForFirefox(page, predicate, arg, timeoutMs) : waitFor(page, predicate, arg, timeoutMs);
}

/** Closes a page of either kind with its browser context. */
async function closePage(page) {
  if (!page) return;
  if (isFirefox(page)) await page.close();
  else await page.context().close();
}

const CANDIDATES = (sdp) => sdp.split("\r\n").filter((l) => l.startsWith("a=candidate:")).length;

test("a Firefox page and a Chromium page in one room: reliable in order both ways (binary up to 1 MiB, byte for byte), unreliable arrives", { timeout: 180_000 }, async () => {
  let ff;
  let ch;
  try {
    ff = await openFirefoxPage(firefox, server.url);
    ch = await openPage(chromium, server);
    const ffId = await join(ff, "firefox-chromium");
    const chId = await join(ch, "firefox-chromium");
    await until(ff, (id) => window.log.connects.includes(id), chId);
    await until(ch, (id) => window.log.connects.includes(id), ffId);
    for (const [page, other] of [[ff, chId], [ch, ffId]]) {
      const state = await page.evaluate((other) => ({
        peers: window.room.peers.map((p) => ({ id: p.id, connected: p.connected })),
        sctp: window.room.connection(other).rtc.sctp?.state,
        reliable: window.room.channelInfo(other, "reliable"),
        unreliable: window.room.channelInfo(other, "unreliable"),
      }), other);
      assert.deepEqual(state.peers, [{ id: other, connected: true }]);
      assert.equal(state.sctp, "connected");
      assert.deepEqual(state.unreliable, { ordered: false, maxRetransmits: 0, maxPacketLifeTime: null, id: 1 }, `${isFirefox(page) ? "Firefox" : "Chromium"}: unreliable channel`);
      assert.deepEqual(state.reliable, { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: 0 });
    }

    // Reliable: COUNT messages each way at once, text with binary messages of every interesting
    // size in between (one frame, just under and over 64 KiB, 200 KiB and 1 MiB: chunked). The
    // binary bytes are seeded with the message's index, so a lost, short or reordered one shows.
    const COUNT = 150;
    const BINARY = { 10: 1, 20: 16 * 1024, 30: 64 * 1024 - 1, 40: 64 * 1024 + 1, 60: 200 * 1024, 90: 1024 * 1024, 120: 200 * 1024, 149: 1024 * 1024 };
    const expected = Array.from({ length: COUNT }, (_, n) => (BINARY[n] ? { size: BINARY[n], ok: true } : `message ${n} ✓`));
    for (const page of [ff, ch]) {
      await installPatterns(page);
      await page.evaluate(() => {
        window.reliable = [];
        window.unreliable = [];
        window.room.on("message", ({ channel, data }) => {
          if (channel === "reliable") {
            const n = window.reliable.length;
            window.reliable.push(typeof data === "string" ? data : { size: data.byteLength, ok: window.isPattern(n, data) });
          } else {
            window.unreliable.push(typeof data === "string" ? data : data.byteLength === 1 ? `b${data[0]}` : `bad ${data.byteLength}`);
          }
        });
      });
    }
    const send = (page, to) =>
      page.evaluate(({ to, COUNT, BINARY }) => {
        for (let n = 0; n < COUNT; n++) {
          window.room.send(to, "reliable", BINARY[n] ? window.pattern(n, BINARY[n]) : `message ${n} ✓`);
        }
      }, { to, COUNT, BINARY });
    await Promise.all([send(ff, chId), send(ch, ffId)]);
    for (const page of [ff, ch]) {
      const name = isFirefox(page) ? "Firefox" : "Chromium";
      await until(page, (n) => window.reliable.length >= n, COUNT, 60000);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await page.evaluate(() => window.reliable), expected, `${name} got every reliable message, whole and in order`);
    }

    // Unreliable: N small messages each way, text and binary. They may be lost (never on
    // loopback in practice), so only delivery of some, intact and not duplicated, is asserted.
    const N = 40;
    const sent = Array.from({ length: N }, (_, n) => (n % 2 ? `b${n}` : `u${n}`));
    const sendUnreliable = (page, to) =>
      page.evaluate(({ to, N }) => {
        for (let n = 0; n < N; n++) window.room.send(to, "unreliable", n % 2 ? new Uint8Array([n]) : `u${n}`);
      }, { to, N });
    await Promise.all([sendUnreliable(ff, chId), sendUnreliable(ch, ffId)]);
    for (const page of [ff, ch]) {
      await until(page, () => window.unreliable.length >= 1, undefined, 10000);
      await new Promise((r) => setTimeout(r, 500));
      const got = await page.evaluate(() => window.unreliable);
      assert.ok(got.length >= 1 && got.length <= N, `${got.length} of ${N}`);
      assert.ok(got.every((m) => sent.includes(m)), JSON.stringify(got));
      assert.equal(new Set(got).size, got.length, "none duplicated");
      console.log(`${isFirefox(page) ? "Firefox" : "Chromium"} got ${got.length}/${N} unreliable messages`);
    }

    for (const page of [ff, ch]) {
      assert.deepEqual(await page.evaluate(() => window.log.errors), []);
      assert.deepEqual(page.problems, []);
    }
  } finally {
    await closePage(ff);
    await closePage(ch);
  }
});

test("Firefox to the server peer: both channels echo; 1 MiB, 16 MiB and 200 x 8 KiB come back whole and in order", { timeout: 180_000 }, async () => {
  let page;
  try {
    page = await openFirefoxPage(firefox, echo.url);
    await installPatterns(page);
    const linesBefore = echo.lines.length;
    const info = await page.evaluate(async () => {
      window.got = [];
      window.conn = await window.sb.connectToServer("/connect");
      window.conn.on("message", ({ channel, data }) => window.got.push({ channel, text: typeof data === "string" ? data : null, size: typeof data === "string" ? null : data.byteLength, head: typeof data === "string" ? null : Array.from(data.subarray(0, 4)) }));
      window.conn.on("close", (event) => (window.closeEvent = event));
      return {
        transport: window.conn.transport,
        unreliable: window.conn.channelInfo("unreliable"),
        reliable: window.conn.channelInfo("reliable"),
        candidates: (window.conn.rtc?.localDescription?.sdp ?? "").split("\r\n").filter((l) => l.startsWith("a=candidate:")).map((l) => l.split(" ").slice(4, 8).join(" ")),
      };
    });
    assert.equal(info.transport, "webrtc", `WebRTC, not the WebSocket fallback (Firefox offered ${JSON.stringify(info.candidates)})`);
    assert.deepEqual(info.unreliable, { ordered: false, maxRetransmits: 0, maxPacketLifeTime: null, id: 1 });
    assert.deepEqual(info.reliable, { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: 0 });
    const opened = await waitLine(echo, (l) => echo.lines.indexOf(l) >= linesBefore && l.startsWith("open "));
    const [, peer, transport] = opened.split(" ");
    assert.equal(transport, "webrtc");

    // Both channels echo. Unreliable echoes may be lost (never on loopback in practice): of
    // twenty, at least one must come back, intact.
    await page.evaluate(() => {
      window.conn.send("reliable", "text over reliable");
      window.conn.send("reliable", new Uint8Array([1, 2, 3, 4, 5]));
      window.conn.send("reliable", new Uint8Array(100_000).fill(9));
      for (let i = 0; i < 20; i++) window.conn.send("unreliable", i % 2 ? new Uint8Array([7, 7, i]) : `unreliable ${i}`);
    });
    await waitForFirefox(page, () => window.got.filter((m) => m.channel === "reliable").length === 3 && window.got.some((m) => m.channel === "unreliable"), undefined, 10000);
    await new Promise((r) => setTimeout(r, 300));
    const got = await page.evaluate(() => window.got);
    const reliable = got.filter((m) => m.channel === "reliable");
    assert.deepEqual(reliable.map((m) => m.text ?? m.size), ["text over reliable", 5, 100_000], "reliable in order, whole");
    assert.deepEqual(reliable[1].head, [1, 2, 3, 4]);
    assert.deepEqual(reliable[2].head, [9, 9, 9, 9]);
    const unreliable = got.filter((m) => m.channel === "unreliable");
    assert.ok(unreliable.length >= 1 && unreliable.length <= 20, `${unreliable.length} unreliable echoes`);
    for (const m of unreliable) {
      if (m.text !== null) assert.match(m.text, /^unreliable \d*[02468]$/);
      else assert.deepEqual([m.size, ...m.head.slice(0, 2)], [3, 7, 7]);
    }

    // Sizes on both sides of the server's 128 KiB SCTP send buffer, 1 MiB, the largest message
    // (16 MiB), then a burst of 200 x 8 KiB: every echo checked byte for byte, in order.
    const sizes = [128 * 1024 - 64, 128 * 1024 + 64, 1024 * 1024, 16 * 1024 * 1024, ...Array(200).fill(8 * 1024)];
    const result = await page.evaluate(async (sizes) => {
      const checked = [];
      const done = new Promise((resolve) => {
        window.conn.on("message", ({ channel, data }) => {
          const seed = checked.length;
          checked.push(channel === "reliable" && typeof data !== "string" && data.byteLength === sizes[seed] && window.isPattern(seed, data));
          if (checked.length === sizes.length) resolve();
        });
      });
      sizes.forEach((size, seed) => window.conn.send("reliable", window.pattern(seed, size)));
      await Promise.race([done, new Promise((r) => setTimeout(r, 120_000))]);
      return { count: checked.length, bad: checked.flatMap((ok, i) => (ok ? [] : [i])) };
    }, sizes);
    assert.deepEqual(result, { count: sizes.length, bad: [] }, "every message back, whole, in order");
    assert.equal(await page.evaluate(() => window.closeEvent), undefined);
    assert.deepEqual(page.problems, []);

    // Closing the page: the server sees it at once. The reason is "goodbye: page closed" (the
    // client's pagehide handler) or, in about 40% of Firefox tab closes, "channel_closed":
    // Firefox's process hang monitor cuts short the pagehide listener that runs as the tab
    // closes (no catch or finally of it runs) before the goodbye frame is sent, and the channels
    // then close with the page. Both are a prompt close; which one is logged.
    const closing = Date.now();
    await page.close();
    page = undefined;
    const closed = await waitLine(echo, (l) => l.startsWith(`closed ${peer} `), 10000);
    const elapsed = Date.now() - closing;
    console.log(`server saw "${closed}" ${elapsed} ms after the Firefox page closed`);
    assert.match(closed, /^closed \S+ (goodbye: page closed|channel_closed)$/);
    assert.ok(elapsed < 5000, `${elapsed} ms`);
  } finally {
    await closePage(page);
  }
});

/**
 * Pairs `offerer` and `answerer` with compact codes only (the base64url code one way, the QR
 * text the other), exchanges a message each way on both channels, and returns the code sizes.
 */
async function pair(offerer, answerer) {
  const offer = await offerer.evaluate(async () => {
    window.offer = await window.sb.createPairingOffer();
    const sdp = window.offer.connection.rtc.localDescription.sdp;
    return { code: window.offer.code, bytes: window.offer.bytes, sdp, description: JSON.parse(JSON.stringify(window.sb.decodeCode(window.offer.code), (k, v) => (k === "digest" ? undefined : v))) };
  });
  const answer = await answerer.evaluate(async (code) => {
    const { answer, connection } = await window.sb.answerPairingOffer(code);
    window.opening = connection.then((c) => (window.conn = c));
    window.opening.catch(() => {});
    return { qrText: answer.qrText, bytes: answer.bytes };
  }, offer.code);
  const accepted = await offerer.evaluate(async (answer) => {
    try {
      window.conn = await Promise.race([window.offer.accept(answer), new Promise((_, reject) => setTimeout(() => reject(new Error("not open after 20 s")), 20000))]);
      return "open";
    } catch (error) {
      return `${error.code ?? ""} ${error.message}`;
    }
  }, answer.qrText);
  assert.equal(accepted, "open", "the offerer's connection opens");
  const answered = await answerer.evaluate(() => Promise.race([window.opening.then(() => "open", (e) => `${e.code} ${e.message}`), new Promise((r) => setTimeout(() => r("not open after 20 s"), 20000))]));
  assert.equal(answered, "open", "the answerer's connection opens");

  for (const page of [offerer, answerer]) {
    const info = await page.evaluate(() => {
      window.got = { reliable: [], unreliable: [] };
      window.closes = [];
      window.conn.on("message", ({ channel, data }) => window.got[channel].push(typeof data === "string" ? data : Array.from(data)));
      window.conn.on("close", ({ reason }) => window.closes.push(reason));
      return { unreliable: window.conn.channelInfo("unreliable"), reliable: window.conn.channelInfo("reliable") };
    });
    assert.deepEqual(info.unreliable, { ordered: false, maxRetransmits: 0, maxPacketLifeTime: null, id: 1 });
    assert.deepEqual(info.reliable, { ordered: true, maxRetransmits: null, maxPacketLifeTime: null, id: 0 });
  }
  const say = (page, text) =>
    page.evaluate((text) => {
      window.conn.send("reliable", text);
      window.conn.send("reliable", new Uint8Array([1, 2, 3]));
      for (let n = 0; n < 10; n++) window.conn.send("unreliable", `${text} ${n}`);
    }, text);
  await say(offerer, "hello from the offerer");
  await say(answerer, "hello from the answerer");
  for (const [page, from] of [[answerer, "the offerer"], [offerer, "the answerer"]]) {
    await until(page, () => window.got.reliable.length === 2 && window.got.unreliable.length >= 1, undefined, 10000);
    const got = await page.evaluate(() => window.got);
    assert.deepEqual(got.reliable, [`hello from ${from}`, [1, 2, 3]]);
    assert.ok(got.unreliable.every((m) => m.startsWith(`hello from ${from} `)), JSON.stringify(got.unreliable));
  }

  // Closing the answerer's page is seen by the offerer. A closed Firefox page ends its
  // association (the other side sees its channels close at once); a Chromium page closed with its
  // context does not, so Firefox sees it only when ICE consent fails (about 8-12 s) plus the
  // client's disconnectTimeoutMs (5 s): 13-17 s measured, hence the longer bound.
  const closing = Date.now();
  await closePage(answerer);
  await until(offerer, () => window.closes.length === 1, undefined, 45000);
  const closeSeenMs = Date.now() - closing;
  const closeReason = (await offerer.evaluate(() => window.closes))[0];
  assert.deepEqual(offerer.problems, []);

  const candidates = offer.description.candidates;
  return {
    offerBytes: offer.bytes,
    answerBytes: answer.bytes,
    offerCandidates: candidates.map((c) => `${c.protocol}${c.tcpType ? `/${c.tcpType}` : ""} ${c.address}:${c.port}`),
    offerSdpCandidates: CANDIDATES(offer.sdp),
    closeSeenMs,
    closeReason,
  };
}

test("Firefox and Chromium pair with compact codes only, both ways, and talk", { timeout: 180_000 }, async () => {
  const opened = [];
  try {
    // Firefox offers, Chromium answers.
    const ff = await openFirefoxPage(firefox, server.url);
    opened.push(ff);
    const ch = await openPage(chromium, server);
    opened.push(ch);
    const firefoxOffer = await pair(ff, ch);
    console.log(
      `Firefox offer ${firefoxOffer.offerBytes} B (${firefoxOffer.offerCandidates.length} of ${firefoxOffer.offerSdpCandidates} candidates: ${firefoxOffer.offerCandidates.join(", ")}); Chromium answer ${firefoxOffer.answerBytes} B; Firefox saw Chromium's page close after ${firefoxOffer.closeSeenMs} ms (${firefoxOffer.closeReason})`,
    );
    assert.ok(firefoxOffer.offerCandidates.some((c) => c.startsWith("udp ")), "Firefox offers a UDP candidate");

    // Chromium offers, Firefox answers.
    const ch2 = await openPage(chromium, server);
    opened.push(ch2);
    const ff2 = await openFirefoxPage(firefox, server.url);
    opened.push(ff2);
    const chromiumOffer = await pair(ch2, ff2);
    console.log(
      `Chromium offer ${chromiumOffer.offerBytes} B (${chromiumOffer.offerCandidates.length} candidates: ${chromiumOffer.offerCandidates.join(", ")}); Firefox answer ${chromiumOffer.answerBytes} B; Chromium saw Firefox's page close after ${chromiumOffer.closeSeenMs} ms (${chromiumOffer.closeReason})`,
    );
  } finally {
    for (const page of opened) await closePage(page).catch(() => {});
  }
});

test("the Rust client in wasm, in Firefox, meets a Chromium page: reliable both ways in order (some chunked), unreliable both ways", { timeout: 120_000 }, async () => {
  let ff;
  let ch;
  try {
    ff = await openFirefoxPage(firefox, server.url);
    await ff.goto(`${server.url}/demo/rust-chat?room=wasm-firefox`);
    await waitForFirefox(ff, () => window.wasmRoom !== undefined || window.joinError !== undefined);
    assert.equal(await ff.evaluate(() => window.joinError), undefined, "the wasm peer joined");
    const ffId = await ff.evaluate(() => window.wasmRoom.id);
    ch = await openPage(chromium, server);
    const chId = await join(ch, "wasm-firefox");
    await until(ch, (id) => window.log.connects.includes(id), ffId);
    await waitForFirefox(ff, (id) => window.events.some((e) => e.type === "connect" && e.peer === id), chId);

    // Chromium (JS) -> Firefox (wasm): 100 reliable, every 25th of 70,000 bytes (chunked).
    const size = (i, big) => (i % 25 === 0 ? big : 100 + i);
    await ch.evaluate((other) => {
      for (let i = 0; i < 100; i++) {
        const bytes = new Uint8Array(i % 25 === 0 ? 70000 : 100 + i).fill(i);
        window.room.send(other, "reliable", bytes);
      }
    }, ffId);
    await waitForFirefox(ff, () => window.events.filter((e) => e.type === "message" && e.channel === "reliable").length >= 100, undefined, 30000);
    const inFirefox = await ff.evaluate(() =>
      window.events.filter((e) => e.type === "message" && e.channel === "reliable").map((e) => [e.data.byteLength, e.data[0], e.data[e.data.byteLength - 1]]),
    );
    assert.deepEqual(inFirefox, Array.from({ length: 100 }, (_, i) => [size(i, 70000), i, i]));

    // Firefox (wasm) -> Chromium (JS): 100 of its own, every 25th of 100,000 bytes.
    await ff.evaluate((other) => {
      for (let i = 0; i < 100; i++) {
        const bytes = new Uint8Array(i % 25 === 0 ? 100000 : 100 + i).fill(255 - i);
        window.wasmRoom.send(other, "reliable", bytes);
      }
    }, chId);
    await waitFor(ch, () => (window.log.messages.reliable?.length ?? 0) >= 100, undefined, 30000);
    const inChromium = await ch.evaluate(() => window.log.messages.reliable.map((m) => [m.bytes, m.head[0], m.tail]));
    assert.deepEqual(inChromium, Array.from({ length: 100 }, (_, i) => [size(i, 100000), 255 - i, 255 - i]));

    // Unreliable both ways.
    await ch.evaluate((other) => {
      for (let i = 0; i < 20; i++) window.room.send(other, "unreliable", `u${i}`);
    }, ffId);
    await waitForFirefox(ff, () => window.events.some((e) => e.type === "message" && e.channel === "unreliable"));
    await ff.evaluate(() => {
      for (let i = 0; i < 20; i++) window.wasmRoom.broadcast("unreliable", `w${i}`);
    });
    await waitFor(ch, () => (window.log.messages.unreliable ?? []).some((m) => m.text?.startsWith("w")));

    // Past Firefox's send buffer (buffered_high_bytes, 1 MiB): 4 MiB arrives whole.
    await ff.evaluate((other) => window.wasmRoom.send(other, "reliable", new Uint8Array(4 * 1024 * 1024).fill(42)), chId);
    await waitFor(ch, () => window.log.messages.reliable.length >= 101, undefined, 30000);
    assert.deepEqual(await ch.evaluate(() => { const m = window.log.messages.reliable[100]; return [m.bytes, m.head[0], m.tail]; }), [4 * 1024 * 1024, 42, 42]);
    assert.deepEqual(ff.problems, []);
    assert.deepEqual(ch.problems, []);
  } finally {
    await closePage(ff);
    await closePage(ch);
  }
});
