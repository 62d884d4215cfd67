// A native Rust client (crates/client, its room-echo example) and a Chromium page with the
// browser client in one room: presence, reliable both ways (hundreds in order, some past 64
// KiB and chunked), unreliable both ways, and each side seeing the other leave.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { useServerAndBrowser, join, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after });
const repo = fileURLToPath(new URL("../../../../", import.meta.url));

/** Starts the room-echo example in `room`; resolves to { id, lines, write(line), exited }. */
async function rustPeer(url) {
  const path = process.env.SWITCHBOARD_ROOM_ECHO_BIN ?? `${repo}target/debug/examples/room-echo`;
  if (!existsSync(path)) throw new Error(`no room-echo at ${path}; run cargo build -p switchboard-client --examples`);
  const child = spawn(path, [url], { stdio: ["pipe", "pipe", "pipe"] });
  const lines = [];
  let buffered = "";
  let errors = "";
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop();
    lines.push(...parts);
  });
  child.stderr.on("data", (chunk) => (errors += chunk));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  await until(() => lines.some((l) => l.startsWith("joined ")), () => `room-echo did not join: ${errors}`);
  return {
    id: lines.find((l) => l.startsWith("joined ")).split(" ")[1],
    lines,
    write: (line) => child.stdin.write(`${line}\n`),
    exited,
    kill: () => child.kill("SIGKILL"),
  };
}

async function until(predicate, message, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(typeof message === "function" ? message() : message);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("a Rust peer and a Chromium page meet in a room and exchange on both channels", async () => {
  const page = await openPage(env.browser, env.server);
  const pageId = await join(page, "rusty");
  const rust = await rustPeer(`${env.server.ws}/ws/rusty`);
  try {
    await waitFor(page, (id) => window.log.connects.includes(id), rust.id);
    await until(() => rust.lines.includes(`connect ${pageId}`), "the Rust peer did not connect");

    // Page -> Rust -> page: 300 reliable messages in order, every 50th of 70,000 bytes
    // (chunked), echoed back by the Rust peer.
    const sizes = await page.evaluate((other) => {
      const sizes = [];
      for (let i = 0; i < 300; i++) {
        const size = i % 50 === 0 ? 70000 : 100;
        const bytes = new Uint8Array(size);
        new DataView(bytes.buffer).setUint32(0, i);
        bytes[size - 1] = i % 256;
        window.room.send(other, "reliable", bytes);
        sizes.push(size);
      }
      return sizes;
    }, rust.id);
    await waitFor(page, () => (window.log.messages.reliable?.length ?? 0) >= 300, undefined, 30000);
    const echoed = await page.evaluate(() => window.log.messages.reliable);
    echoed.forEach((m, i) => {
      assert.equal(m.from, rust.id);
      assert.equal(m.bytes, sizes[i], `message ${i} size`);
      assert.deepEqual(m.head.slice(0, 4), [0, 0, (i >> 8) & 255, i & 255], `message ${i} in order`);
      assert.equal(m.tail, i % 256);
    });
    const received = rust.lines.filter((l) => l.startsWith(`message ${pageId} reliable binary`));
    assert.equal(received.length, 300);

    // Rust -> page: 200 reliable messages of its own, some chunked, in order.
    rust.write("hello reliable 200 20000");
    await waitFor(page, () => window.log.messages.reliable.length >= 500, undefined, 30000);
    const own = await page.evaluate(() => window.log.messages.reliable.slice(300));
    own.forEach((m, i) => {
      assert.equal(m.bytes, 20000);
      assert.deepEqual(m.head.slice(0, 4), [0, 0, (i >> 8) & 255, i & 255], `Rust message ${i} in order`);
    });

    // Unreliable both ways: text from the page comes back; the Rust peer's own arrive.
    await page.evaluate((other) => {
      for (let i = 0; i < 20; i++) window.room.send(other, "unreliable", `u${i}`);
    }, rust.id);
    await waitFor(page, () => (window.log.messages.unreliable ?? []).some((m) => m.text?.startsWith("u")));
    rust.write("hello unreliable 20 64");
    await waitFor(page, () => (window.log.messages.unreliable ?? []).some((m) => m.bytes === 64));
    assert.ok(rust.lines.some((l) => l.startsWith(`message ${pageId} unreliable text`)));

    // The Rust peer leaves: the page sees it once; then a new Rust peer sees the page leave.
    rust.write("close");
    await rust.exited;
    await waitFor(page, (id) => window.log.leaves.some((l) => l.id === id), rust.id);
    assert.equal(await page.evaluate((id) => window.log.leaves.filter((l) => l.id === id).length, rust.id), 1);
    const second = await rustPeer(`${env.server.ws}/ws/rusty`);
    try {
      await until(() => second.lines.includes(`connect ${pageId}`), "the second Rust peer did not connect");
      await page.evaluate(() => window.room.close());
      await until(() => second.lines.some((l) => l.startsWith(`leave ${pageId} `)), "the Rust peer did not see the page leave");
    } finally {
      second.kill();
    }
    assert.deepEqual(page.problems, []);
  } finally {
    rust.kill();
    await page.context().close();
  }
});
