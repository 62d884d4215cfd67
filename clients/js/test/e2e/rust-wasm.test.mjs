// The Rust client compiled to wasm32 (the committed build of examples/wasm-chat, served at
// /demo/rust-chat) in headless Chromium meets a page with the JavaScript client in one room:
// presence, reliable both ways (hundreds in order, some past 64 KiB and chunked), unreliable
// both ways, each side seeing the other leave; the wasm chat page talks with /demo/chat; and the
// wasm client connects to a server peer (POST /connect) and is echoed on both channels.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { useServerAndBrowser, join, openEchoPage, openPage, startEcho, startServer, waitFor, waitLine } from "./harness.mjs";

const env = useServerAndBrowser({ before, after });

/** Opens the wasm demo in `room`; resolves to { page, id, problems } once it has joined. */
async function wasmPeer(room) {
  const page = await (await env.browser.newContext()).newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(`${env.server.url}/demo/rust-chat?room=${room}`);
  await page.waitForFunction(() => window.wasmRoom !== undefined || window.joinError !== undefined, null, { timeout: 20000 });
  const joinError = await page.evaluate(() => window.joinError);
  assert.equal(joinError, undefined, "the wasm peer joined");
  const id = await page.evaluate(() => window.wasmRoom.id);
  return { page, id, problems };
}

/** The wasm page's events of one type. */
const eventsOf = (page, type) =>
  page.evaluate((type) => window.events.filter((e) => e.type === type), type);

test("the Rust client in wasm and a JavaScript page exchange on both channels and see each other leave", async () => {
  const js = await openPage(env.browser, env.server);
  const jsId = await join(js, "wasm-room");
  const wasm = await wasmPeer("wasm-room");
  try {
    await waitFor(js, (id) => window.log.connects.includes(id), wasm.id);
    await wasm.page.waitForFunction((id) => window.events.some((e) => e.type === "connect" && e.peer === id), jsId, { timeout: 20000 });

    // JS -> wasm: 300 reliable messages in order, every 50th of 70,000 bytes (chunked).
    await js.evaluate((other) => {
      for (let i = 0; i < 300; i++) {
        const size = i % 50 === 0 ? 70000 : 100;
        const bytes = new Uint8Array(size);
        new DataView(bytes.buffer).setUint32(0, i);
        bytes[size - 1] = i % 256;
        window.room.send(other, "reliable", bytes);
      }
    }, wasm.id);
    await wasm.page.waitForFunction(() => window.events.filter((e) => e.type === "message" && e.channel === "reliable").length >= 300, null, { timeout: 30000 });
    const got = await wasm.page.evaluate(() =>
      window.events
        .filter((e) => e.type === "message" && e.channel === "reliable")
        .map((e) => ({ from: e.peer, bytes: e.data.byteLength, index: new DataView(e.data.buffer, e.data.byteOffset).getUint32(0), tail: e.data[e.data.byteLength - 1] })),
    );
    assert.equal(got.length, 300);
    got.forEach((m, i) => {
      assert.equal(m.from, jsId);
      assert.equal(m.bytes, i % 50 === 0 ? 70000 : 100, `message ${i} size`);
      assert.equal(m.index, i, `message ${i} in order`);
      assert.equal(m.tail, i % 256);
    });

    // wasm -> JS: 300 of its own, every 30th of 100,000 bytes, in order; and a text message.
    await wasm.page.evaluate((other) => {
      for (let i = 0; i < 300; i++) {
        const size = i % 30 === 0 ? 100000 : 200;
        const bytes = new Uint8Array(size);
        new DataView(bytes.buffer).setUint32(0, i);
        bytes[size - 1] = 255 - (i % 256);
        window.wasmRoom.send(other, "reliable", bytes);
      }
      window.wasmRoom.send(other, "reliable", "text from Rust");
    }, jsId);
    await waitFor(js, () => (window.log.messages.reliable?.length ?? 0) >= 301, undefined, 30000);
    const received = await js.evaluate(() => window.log.messages.reliable);
    received.slice(0, 300).forEach((m, i) => {
      assert.equal(m.from, wasm.id);
      assert.equal(m.bytes, i % 30 === 0 ? 100000 : 200, `message ${i} size`);
      assert.deepEqual(m.head.slice(0, 4), [0, 0, (i >> 8) & 255, i & 255], `message ${i} in order`);
      assert.equal(m.tail, 255 - (i % 256));
    });
    assert.equal(received[300].text, "text from Rust");

    // Unreliable both ways.
    await js.evaluate((other) => {
      for (let i = 0; i < 20; i++) window.room.send(other, "unreliable", `u${i}`);
    }, wasm.id);
    await wasm.page.waitForFunction(() => window.events.some((e) => e.type === "message" && e.channel === "unreliable" && e.data.startsWith?.("u")), null, { timeout: 10000 });
    const sent = await wasm.page.evaluate(() => {
      let sent = 0;
      for (let i = 0; i < 20; i++) sent += window.wasmRoom.broadcast("unreliable", new Uint8Array(64).fill(i));
      return sent;
    });
    assert.equal(sent, 20, "each broadcast reached the one connected peer");
    await waitFor(js, () => (window.log.messages.unreliable ?? []).some((m) => m.bytes === 64));

    // Errors come back at once, as the JS client's do.
    const refused = await wasm.page.evaluate(() => {
      const codes = [];
      for (const attempt of [
        () => window.wasmRoom.send("00000000000000000000000000000001", "reliable", "x"),
        () => window.wasmRoom.send(window.wasmRoom.peers()[0].peer, "nope", "x"),
        () => window.wasmRoom.send(window.wasmRoom.peers()[0].peer, "unreliable", new Uint8Array(20000)),
      ]) {
        try {
          attempt();
          codes.push("sent");
        } catch (error) {
          codes.push(error.message.split(":")[0]);
        }
      }
      return codes;
    });
    assert.deepEqual(refused, ["unknown_peer", "unknown_channel", "message_too_big"]);

    // The wasm peer leaves: the page sees it once, with a goodbye, and the wasm side closes.
    await wasm.page.evaluate(() => window.wasmRoom.close());
    await waitFor(js, (id) => window.log.leaves.some((l) => l.id === id), wasm.id);
    assert.equal(await js.evaluate((id) => window.log.leaves.filter((l) => l.id === id).length, wasm.id), 1);
    await wasm.page.waitForFunction(() => window.events.some((e) => e.type === "close" && e.code === "room_closed"), null, { timeout: 5000 });

    // A second wasm peer sees the page leave.
    const second = await wasmPeer("wasm-room");
    try {
      await second.page.waitForFunction((id) => window.events.some((e) => e.type === "connect" && e.peer === id), jsId, { timeout: 20000 });
      await js.evaluate(() => window.room.close());
      await second.page.waitForFunction((id) => window.events.some((e) => e.type === "leave" && e.peer === id), jsId, { timeout: 10000 });
      const leaves = await eventsOf(second.page, "leave");
      assert.equal(leaves.length, 1);
      assert.deepEqual(second.problems, []);
    } finally {
      await second.page.context().close();
    }
    assert.deepEqual(wasm.problems, []);
    assert.deepEqual(js.problems, []);
  } finally {
    await wasm.page.context().close();
    await js.context().close();
  }
});

test("the wasm chat page and the JavaScript chat page talk", async () => {
  const rust = await wasmPeer("wasm-chat");
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(`${env.server.url}/demo/chat?room=wasm-chat`);
  try {
    await page.waitForFunction(() => window.room?.peers?.some((p) => p.connected), null, { timeout: 20000 });
    await rust.page.waitForFunction(() => document.getElementById("peers").textContent.startsWith("1 connected"), null, { timeout: 20000 });
    await rust.page.fill("#text", "hello from Rust");
    await rust.page.press("#text", "Enter");
    await page.waitForFunction(() => document.getElementById("log").textContent.includes(": hello from Rust"), null, { timeout: 10000 });
    await page.fill("#text", "hello from JavaScript");
    await page.press("#text", "Enter");
    await rust.page.waitForFunction(() => document.getElementById("log").textContent.includes(": hello from JavaScript"), null, { timeout: 10000 });
    assert.deepEqual(rust.problems, []);
  } finally {
    await page.context().close();
    await rust.page.context().close();
  }
});

test("the Rust client in wasm connects to a server peer and is echoed on both channels, then kicked", async () => {
  const echo = await startEcho();
  const page = await openEchoPage(echo, env.browser);
  try {
    const id = await page.evaluate(async () => {
      const wasm = await import("/demo/wasm/switchboard_wasm_chat.js");
      await wasm.default();
      window.wconn = await wasm.WasmConnection.connect("/connect");
      window.wgot = [];
      const pump = () => {
        for (const event of window.wconn.poll()) window.wgot.push(event);
        setTimeout(pump, 10);
      };
      pump();
      return window.wconn.id;
    });
    assert.match(id, /^[0-9a-f]{32}$/);
    // 60 reliable in order (every 12th of 100,000 bytes, chunked), 10 unreliable.
    await page.evaluate(() => {
      for (let i = 0; i < 60; i++) {
        window.wconn.send("reliable", i % 12 === 0 ? new Uint8Array(100000).fill(i) : `r${i}`);
      }
      for (let i = 0; i < 10; i++) window.wconn.send("unreliable", `u${i}`);
    });
    await page.waitForFunction(() => window.wgot.filter((e) => e.channel === "reliable").length >= 60, null, { timeout: 20000 });
    const reliable = await page.evaluate(() =>
      window.wgot.filter((e) => e.channel === "reliable").map((e) => (typeof e.data === "string" ? e.data : `${e.data.byteLength}:${e.data[99999]}`)),
    );
    assert.deepEqual(reliable, Array.from({ length: 60 }, (_, i) => (i % 12 === 0 ? `100000:${i}` : `r${i}`)));
    await page.waitForFunction(() => window.wgot.some((e) => e.channel === "unreliable"), null, { timeout: 10000 });
    // The echo server kicks whoever says "kick me": the wasm client hears its goodbye.
    await page.evaluate(() => window.wconn.send("reliable", "kick me"));
    await page.waitForFunction(() => window.wgot.some((e) => e.type === "close"), null, { timeout: 10000 });
    const close = await page.evaluate(() => window.wgot.find((e) => e.type === "close"));
    assert.equal(close.code, "goodbye");
    assert.deepEqual(page.problems, []);
  } finally {
    await page.context().close();
    await echo.stop();
  }
});

/** Loads the committed wasm build in `page` as `window.w`, and a pump of `window.wconn`'s events into `window.wgot`. */
async function loadWasm(page) {
  await page.evaluate(async () => {
    window.w = await import("/demo/wasm/switchboard_wasm_chat.js");
    await window.w.default();
    window.wgot = [];
    const pump = () => {
      if (window.wconn) for (const event of window.wconn.poll()) window.wgot.push(event);
      setTimeout(pump, 10);
    };
    pump();
  });
}

/** The JS connection `window.conn`'s messages go to `window.got`. */
const recordJs = () => {
  window.got = [];
  window.conn.on("message", ({ channel, data }) => window.got.push([channel, typeof data === "string" ? data : data.byteLength]));
};

/** 40 reliable each way (every 10th of 70,000 bytes), in order, and unreliable both ways. */
async function talk(wasmPage, jsPage) {
  const expected = Array.from({ length: 40 }, (_, i) => ["reliable", i % 10 === 0 ? 70000 : `m${i}`]);
  await wasmPage.evaluate(() => {
    for (let i = 0; i < 40; i++) window.wconn.send("reliable", i % 10 === 0 ? new Uint8Array(70000).fill(i) : `m${i}`);
    window.wconn.send("unreliable", "from wasm");
  });
  await waitFor(jsPage, () => window.got.filter(([c]) => c === "reliable").length >= 40);
  assert.deepEqual(await jsPage.evaluate(() => window.got.filter(([c]) => c === "reliable")), expected);
  await jsPage.evaluate(() => {
    for (let i = 0; i < 40; i++) window.conn.send("reliable", i % 10 === 0 ? new Uint8Array(70000).fill(i) : `m${i}`);
    window.conn.send("unreliable", "from js");
  });
  await waitFor(wasmPage, () => window.wgot.filter((e) => e.channel === "reliable").length >= 40);
  const inWasm = await wasmPage.evaluate(() =>
    window.wgot.filter((e) => e.channel === "reliable").map((e) => ["reliable", typeof e.data === "string" ? e.data : e.data.byteLength]),
  );
  assert.deepEqual(inWasm, expected);
  await waitFor(jsPage, () => window.got.some(([c, d]) => c === "unreliable" && d === "from wasm"));
  await waitFor(wasmPage, () => window.wgot.some((e) => e.channel === "unreliable" && e.data === "from js"));
}

test("the Rust client in wasm pairs with a JavaScript page by codes only, no server, in both directions", async () => {
  const wasmPage = await openPage(env.browser, env.server);
  const jsPage = await openPage(env.browser, env.server);
  try {
    await loadWasm(wasmPage);
    // The wasm side offers, the JS side answers.
    const offerCode = await wasmPage.evaluate(async () => {
      window.offer = await window.w.WasmPairingOffer.create();
      return window.offer.code;
    });
    const answerCode = await jsPage.evaluate(async (code) => {
      const { answer, connection } = await window.sb.answerPairingOffer(code);
      window.opening = connection.then((c) => (window.conn = c));
      return answer.code;
    }, offerCode);
    await wasmPage.evaluate(async (code) => {
      window.wconn = await window.offer.accept(code);
    }, answerCode);
    await jsPage.evaluate(() => window.opening);
    await jsPage.evaluate(recordJs);
    await talk(wasmPage, jsPage);
    // Closing on the wasm side is a goodbye for the JS side.
    await jsPage.evaluate(() => window.conn.on("close", ({ reason }) => (window.closeReason = reason)));
    await wasmPage.evaluate(() => window.wconn.close());
    await waitFor(jsPage, () => window.closeReason !== undefined);
    assert.equal(await jsPage.evaluate(() => window.closeReason), "goodbye");

    // The JS side offers, the wasm side answers.
    await wasmPage.evaluate(() => {
      window.wconn = undefined;
      window.wgot = [];
    });
    const jsOffer = await jsPage.evaluate(async () => {
      window.offer = await window.sb.createPairingOffer();
      return window.offer.code;
    });
    const wasmAnswer = await wasmPage.evaluate(async (code) => {
      window.answer = await window.w.WasmPairingAnswer.answer(code);
      return window.answer.code;
    }, jsOffer);
    await jsPage.evaluate(async (code) => {
      window.conn = await window.offer.accept(code);
    }, wasmAnswer);
    await wasmPage.evaluate(async () => {
      window.wconn = await window.answer.connected();
    });
    await jsPage.evaluate(recordJs);
    await talk(wasmPage, jsPage);

    // A code that is not one is refused with invalid_code.
    const refused = await wasmPage.evaluate(async () => {
      try {
        await window.w.WasmPairingAnswer.answer("not-a-code");
        return "accepted";
      } catch (error) {
        return error.message.split(":")[0];
      }
    });
    assert.equal(refused, "invalid_code");
    assert.deepEqual([...wasmPage.problems, ...jsPage.problems], []);
  } finally {
    await wasmPage.context().close();
    await jsPage.context().close();
  }
});

test("with UDP blocked the Rust client in wasm falls back to the server peer's WebSocket: both channels echoed, its close a goodbye", async () => {
  // The server peer advertises 127.0.0.2, where the browser's ICE checks never reach it.
  const echo = await startEcho({ publicIps: ["127.0.0.2"] });
  const page = await openEchoPage(echo, env.browser);
  try {
    await loadWasm(page);
    const transport = await page.evaluate(async () => {
      window.wconn = await window.w.WasmConnection.connect("/connect");
      return window.wconn.transport;
    });
    assert.equal(transport, "websocket");
    await page.evaluate(() => {
      for (let i = 0; i < 30; i++) window.wconn.send("reliable", i % 10 === 0 ? new Uint8Array(100000).fill(i) : `r${i}`);
      window.wconn.send("unreliable", "over tcp");
    });
    await page.waitForFunction(() => window.wgot.filter((e) => e.channel === "reliable").length >= 30, null, { timeout: 20000 });
    const reliable = await page.evaluate(() =>
      window.wgot.filter((e) => e.channel === "reliable").map((e) => (typeof e.data === "string" ? e.data : `${e.data.byteLength}:${e.data[0]}`)),
    );
    assert.deepEqual(reliable, Array.from({ length: 30 }, (_, i) => (i % 10 === 0 ? `100000:${i}` : `r${i}`)));
    await page.waitForFunction(() => window.wgot.some((e) => e.channel === "unreliable" && e.data === "over tcp"), null, { timeout: 10000 });
    await page.evaluate(() => window.wconn.close());
    await waitLine(echo, (l) => l.startsWith("closed ") && l.includes("goodbye"));
    assert.deepEqual(page.problems, []);
  } finally {
    await page.context().close();
    await echo.stop();
  }
});

test("GGRS in the browser: two wasm pages run 240 frames of a rollback game over the unreliable channel and agree on every frame", { timeout: 90_000 }, async () => {
  const a = await wasmPeer("wasm-rollback");
  const b = await wasmPeer("wasm-rollback");
  try {
    for (const [page, other] of [[a, b.id], [b, a.id]]) {
      await page.page.waitForFunction((id) => window.events.some((e) => e.type === "connect" && e.peer === id), other, { timeout: 20000 });
    }
    // Each page ticks its session at 60 Hz, as a game loop would.
    for (const [page, other] of [[a, b.id], [b, a.id]]) {
      await page.page.evaluate((other) => {
        window.rollback = window.wasmRoom.startRollback(other);
        window.ticker = setInterval(() => window.rollback.tick(), 16);
      }, other);
    }
    const FRAMES = 240;
    for (const { page } of [a, b]) {
      await page.waitForFunction((frames) => window.rollback.confirmed >= frames + 10, FRAMES, { timeout: 60000 });
    }
    const [sumsA, sumsB] = await Promise.all(
      [a, b].map(({ page }) => page.evaluate((frames) => window.rollback.checksums(frames), FRAMES)),
    );
    assert.equal(sumsA.length, FRAMES);
    assert.ok(sumsA.every((s) => s !== ""), "every frame simulated");
    assert.deepEqual(sumsA, sumsB, "identical state on every frame");
    for (const { page } of [a, b]) {
      assert.deepEqual(await page.evaluate(() => window.rollback.problems()), []);
      await page.evaluate(() => clearInterval(window.ticker));
    }
    const rollbacks = await Promise.all([a, b].map(({ page }) => page.evaluate(() => window.rollback.rollbacks)));
    assert.ok(rollbacks.some((n) => n > 0), `predictions missed and GGRS rolled back (${rollbacks})`);
    assert.deepEqual([...a.problems, ...b.problems], []);
  } finally {
    await a.page.context().close();
    await b.page.context().close();
  }
});

test("a join the server refuses (no token where one is required) fails in wasm with the server's code, as in the JS client", async () => {
  const guarded = await startServer(["--auth-jwt-secret", "a-secret-for-the-wasm-refusal-test"]);
  const page = await (await env.browser.newContext()).newPage();
  try {
    await page.goto(`${guarded.url}/demo/rust-chat?room=guarded`);
    await page.waitForFunction(() => window.joinError !== undefined || window.wasmRoom !== undefined, null, { timeout: 20000 });
    const error = await page.evaluate(() => window.joinError);
    assert.match(error ?? "joined", /^unauthorized: /);
  } finally {
    await page.context().close();
    await guarded.stop();
  }
});

test("wasm: messages past the browser's send buffer (buffered_high_bytes, 1 MiB) arrive whole, and max_buffered_bytes (32 MiB) refuses the one over it", { timeout: 120_000 }, async () => {
  const js = await openPage(env.browser, env.server);
  const jsId = await join(js, "wasm-limits");
  const wasm = await wasmPeer("wasm-limits");
  try {
    await waitFor(js, (id) => window.log.connects.includes(id), wasm.id);
    await wasm.page.waitForFunction((id) => window.events.some((e) => e.type === "connect" && e.peer === id), jsId, { timeout: 20000 });
    // Two 16 MiB messages wait in the client (the browser takes 1 MiB at a time): 32 MiB less
    // what the browser took. A third does not fit in max_buffered_bytes.
    const outcome = await wasm.page.evaluate((other) => {
      const sent = [];
      for (let i = 0; i < 3; i++) {
        try {
          window.wasmRoom.send(other, "reliable", new Uint8Array(16 * 1024 * 1024).fill(i + 1));
          sent.push("sent");
        } catch (error) {
          sent.push(error.message.split(":")[0]);
        }
      }
      return sent;
    }, jsId);
    assert.deepEqual(outcome, ["sent", "sent", "send_queue_full"]);
    await waitFor(js, () => (window.log.messages.reliable?.length ?? 0) >= 2, undefined, 60000);
    const got = await js.evaluate(() => window.log.messages.reliable.map((m) => [m.bytes, m.head[0], m.tail]));
    assert.deepEqual(got, [[16 * 1024 * 1024, 1, 1], [16 * 1024 * 1024, 2, 2]]);
    // Once drained, the queue takes a message again; and JS -> wasm, 5 MiB arrives whole.
    await wasm.page.evaluate((other) => window.wasmRoom.send(other, "reliable", new Uint8Array(3 * 1024 * 1024).fill(9)), jsId);
    await waitFor(js, () => window.log.messages.reliable.length >= 3, undefined, 30000);
    await js.evaluate((other) => window.room.send(other, "reliable", new Uint8Array(5 * 1024 * 1024).fill(7)), wasm.id);
    await wasm.page.waitForFunction(() => window.events.some((e) => e.type === "message" && e.data.byteLength === 5 * 1024 * 1024), null, { timeout: 30000 });
    const big = await wasm.page.evaluate(() => {
      const m = window.events.find((e) => e.type === "message" && e.data.byteLength === 5 * 1024 * 1024);
      return m.data.every((b) => b === 7);
    });
    assert.ok(big, "5 MiB byte for byte");
    assert.deepEqual(wasm.problems, []);
  } finally {
    await wasm.page.context().close();
    await js.context().close();
  }
});
