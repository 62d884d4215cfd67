// The example game (examples/arena) in two Chromium pages: its WebRTC port is bound to 0.0.0.0
// (the server advertises the LAN address and loopback), inputs go up unreliably, snapshots come
// down at about 30 Hz, chat is reliable.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { launchBrowser } from "./harness.mjs";

const repo = fileURLToPath(new URL("../../../../", import.meta.url));
let arena;
let url;
let browser;

before(async () => {
  const path = process.env.SWITCHBOARD_ARENA_BIN ?? `${repo}target/debug/switchboard-arena`;
  if (!existsSync(path)) throw new Error(`no arena binary at ${path}; run cargo build -p switchboard-arena`);
  arena = spawn(path, ["127.0.0.1:0", "0.0.0.0:0"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`arena did not start: ${output}`)), 15000);
    arena.stdout.on("data", (chunk) => {
      output += chunk;
      const match = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${match[1]}`);
      }
    });
  });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  arena?.kill("SIGTERM");
});

test("two players see each other at about 30 snapshots per second, move, and chat", async () => {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext()).newPage();
    page.problems = [];
    page.on("pageerror", (error) => page.problems.push(error.message));
    await page.goto(`${url}/`);
    pages.push(page);
  }
  for (const page of pages) {
    await page.waitForFunction(() => window.arena?.state()?.p.length === 2, null, { timeout: 20000 });
  }
  const before = await pages[0].evaluate(() => window.arena.frames());
  await new Promise((r) => setTimeout(r, 2000));
  const rate = ((await pages[0].evaluate(() => window.arena.frames())) - before) / 2;
  assert.ok(rate >= 20, `${rate} snapshots/s`);
  const position = () => pages[0].evaluate(() => window.arena.state().p.find((p) => p[0] === window.arena.me()).slice(1, 3));
  const start = await position();
  await pages[0].keyboard.down("ArrowRight");
  await new Promise((r) => setTimeout(r, 700));
  await pages[0].keyboard.up("ArrowRight");
  const moved = await position();
  assert.ok(moved[0] !== start[0] || moved[1] !== start[1], `moved from ${start} to ${moved}`);
  await pages[0].fill("#line", "gg");
  await pages[0].press("#line", "Enter");
  await pages[1].waitForFunction(() => document.getElementById("chat").textContent.includes(": gg"), null, { timeout: 10000 });
  for (const page of pages) assert.deepEqual(page.problems, []);
});
