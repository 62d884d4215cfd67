// A Chromium page and the native Rust client (crates/client, its pair-echo example) pair with
// compact codes only, no signaling server, in both directions (the page offers, the Rust peer
// offers), and exchange messages on both channels; the Rust peer echoes them.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { useServerAndBrowser, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after });
const repo = fileURLToPath(new URL("../../../../", import.meta.url));

/** Starts pair-echo with `args`; resolves to { lines, write(line), exited }. */
function pairEcho(args) {
  const path = process.env.SWITCHBOARD_PAIR_ECHO_BIN ?? `${repo}target/debug/examples/pair-echo`;
  if (!existsSync(path)) throw new Error(`no pair-echo at ${path}; run cargo build -p switchboard-client --examples`);
  const child = spawn(path, args, { stdio: ["pipe", "pipe", "pipe"] });
  const peer = { lines: [], errors: "", write: (line) => child.stdin.write(`${line}\n`) };
  let buffered = "";
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop();
    peer.lines.push(...parts);
  });
  child.stderr.on("data", (chunk) => (peer.errors += chunk));
  peer.exited = new Promise((resolve) => child.on("exit", resolve));
  peer.kill = () => child.kill("SIGKILL");
  return peer;
}

async function until(predicate, message, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(typeof message === "function" ? message() : message);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The value after `prefix ` of the first line that has it. */
async function lineValue(peer, prefix) {
  await until(() => peer.lines.some((l) => l.startsWith(`${prefix} `)), () => `no ${prefix} line: ${peer.lines.join(" | ")} ${peer.errors}`);
  return peer.lines.find((l) => l.startsWith(`${prefix} `)).slice(prefix.length + 1);
}

/** The page sends 100 reliable messages (every 20th of 70,000 bytes, chunked) and 20 unreliable ones; all reliable ones come back in order, some unreliable ones too. */
async function exchange(page, rust) {
  await page.evaluate(() => {
    window.log = { reliable: [], unreliable: [], closes: [] };
    window.conn.on("message", ({ channel, data }) => window.log[channel].push(typeof data === "string" ? data : data.length));
    window.conn.on("close", ({ reason }) => window.log.closes.push(reason));
    for (let i = 0; i < 100; i++) {
      window.conn.send("reliable", i % 20 === 0 ? new Uint8Array(70_000).fill(i) : `r${i}`);
    }
    for (let i = 0; i < 20; i++) window.conn.send("unreliable", `u${i}`);
  });
  await waitFor(page, () => window.log.reliable.length === 100);
  const got = await page.evaluate(() => window.log.reliable);
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => (i % 20 === 0 ? 70_000 : `r${i}`)));
  await waitFor(page, () => window.log.unreliable.length > 0);
  assert.ok(rust.lines.includes("message reliable binary 70000"));
}

test("a Chromium page offers, the Rust peer answers: codes only, both channels", async () => {
  const page = await openPage(env.browser, env.server);
  const offerCode = await page.evaluate(async () => {
    window.offer = await window.sb.createPairingOffer();
    return window.offer.code;
  });
  const rust = pairEcho(["answer", offerCode]);
  try {
    const answerCode = await lineValue(rust, "answer");
    await page.evaluate(async (code) => {
      window.conn = await window.offer.accept(code);
    }, answerCode);
    await until(() => rust.lines.includes("open"), "the Rust peer did not open");
    await exchange(page, rust);
    // The page closes with a reason: the Rust peer hears a goodbye and exits.
    await page.evaluate(() => window.conn.close("done"));
    await until(() => rust.lines.some((l) => l.startsWith("closed ")), "the Rust peer did not see the close");
    assert.ok(rust.lines.includes("closed goodbye"), rust.lines.join(" | "));
    assert.equal(await rust.exited, 0);
    assert.deepEqual(page.problems, []);
  } finally {
    rust.kill();
  }
});

test("the Rust peer offers, a Chromium page answers: codes only, both channels", async () => {
  const page = await openPage(env.browser, env.server);
  const rust = pairEcho(["offer"]);
  try {
    const offerCode = await lineValue(rust, "offer");
    const answerCode = await page.evaluate(async (code) => {
      const { answer, connection } = await window.sb.answerPairingOffer(code);
      window.opening = connection.then((c) => (window.conn = c));
      return answer.qrText;
    }, offerCode);
    rust.write(`answer ${answerCode}`);
    await page.evaluate(() => window.opening);
    await until(() => rust.lines.includes("open"), "the Rust peer did not open");
    await exchange(page, rust);
    // The Rust peer closes: the page sees it.
    rust.write("close");
    await waitFor(page, () => window.log.closes.length === 1);
    assert.equal(await rust.exited, 0);
    assert.deepEqual(page.problems, []);
  } finally {
    rust.kill();
  }
});
