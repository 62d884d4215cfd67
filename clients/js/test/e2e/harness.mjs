// Shared set-up of the end-to-end tests: the real `switchboard` binary on loopback and Debian's
// Chromium driven by playwright-core (which never downloads a browser of its own here).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const repo = fileURLToPath(new URL("../../../../", import.meta.url));

/** The switchboard binary: $SWITCHBOARD_BIN, else the workspace's debug build. */
export function binary() {
  const path = process.env.SWITCHBOARD_BIN ?? `${repo}target/debug/switchboard`;
  if (!existsSync(path)) throw new Error(`no switchboard binary at ${path}; run cargo build first`);
  return path;
}

/** Starts `switchboard serve` on 127.0.0.1 with free ports; resolves to { url, stop() }. */
export async function startServer(extraArgs = []) {
  const child = spawn(
    binary(),
    ["serve", "--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0", ...extraArgs],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 15000);
    const onData = (chunk) => {
      output += chunk;
      const match = /Switchboard is running: (http:\/\/[^/\s]+)\//.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  return {
    url,
    ws: url.replace(/^http/, "ws"),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Starts the server peer's echo example (crates/peer/examples/echo.rs) on free loopback ports
 * (`jwtSecret`: connecting needs an HS256 token signed with it);
 * resolves to { url, udp, lines (its stdout, one event per line), stop() }.
 */
export async function startEcho({ udp = "127.0.0.1:0", publicIps = [], hub, jwtSecret } = {}) {
  const path = process.env.SWITCHBOARD_ECHO_BIN ?? `${repo}target/debug/examples/echo`;
  if (!existsSync(path)) throw new Error(`no echo example at ${path}; run cargo build -p switchboard-peer --examples`);
  const env = { ...process.env };
  if (hub !== undefined) env.ECHO_HUB = hub;
  if (jwtSecret !== undefined) env.ECHO_JWT_SECRET = jwtSecret;
  const child = spawn(path, ["127.0.0.1:0", udp, ...publicIps], { stdio: ["ignore", "pipe", "pipe"], env });
  const lines = [];
  let buffered = "";
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop();
    lines.push(...parts);
  });
  let errors = "";
  child.stderr.on("data", (chunk) => (errors += chunk));
  const deadline = Date.now() + 15000;
  const ready = (l) => (hub === undefined ? l.startsWith("echo ") : l.startsWith("hub "));
  while (!lines.some(ready)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`echo did not start: ${errors}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [, url, , bound] = lines.find((l) => l.startsWith("echo ")).split(" ");
  return {
    url: url.replace(/\/$/, ""),
    udp: bound,
    lines,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Registers `before` / `after` hooks that start a `switchboard serve` (with `serverArgs`) and a
 * browser (with `browserOptions`) for the test file; their handles fill the returned object.
 */
export function useServerAndBrowser(hooks, serverArgs = [], browserOptions = {}) {
  const env = { server: undefined, browser: undefined };
  hooks.before(async () => {
    env.server = await startServer(serverArgs);
    env.browser = await launchBrowser(browserOptions);
  });
  hooks.after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

/** Chromium flags from the brief, plus plain loopback addresses for meetings on one machine. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--allow-loopback-in-peer-connection",
];

/**
 * Launches headless Chromium (a fresh profile each time). `mdns: false` exposes plain host
 * addresses; `marker` is put on the browser process's command line so a test can find it.
 */
export async function launchBrowser({ mdns = false, marker } = {}) {
  const executablePath = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
  const args = [...CHROMIUM_ARGS];
  if (marker) args.push(`--switchboard-test-marker=${marker}`);
  if (!mdns) args.push("--disable-features=WebRtcHideLocalIpsWithMdns");
  return chromium.launch({ executablePath, headless: true, args });
}

/**
 * Opens a page of `server` in its own browser context, with the client loaded as `window.sb`.
 * Uncaught exceptions and unhandled rejections are collected in `page.problems` (the browser's
 * own console noise, such as a failed WebSocket connection, is not).
 */
export async function openPage(browser, server) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && message.text().startsWith("unhandled rejection")) {
      page.problems.push(message.text());
    }
  });
  await page.goto(`${server.url}/`);
  await page.evaluate(async () => {
    window.sb = await import("/switchboard.js");
    window.addEventListener("unhandledrejection", (event) => {
      console.error(`unhandled rejection: ${event.reason?.code ?? ""} ${event.reason?.message ?? event.reason}`);
    });
  });
  return page;
}

/**
 * Joins `room` in the page and records everything in `window.log`: joins, connects, leaves
 * (with time), messages (per channel, in arrival order) and errors.
 */
export async function join(page, room, options = {}) {
  return page.evaluate(
    async ({ room, options }) => {
      const log = { joins: [], connects: [], leaves: [], errors: [], messages: {}, closes: [] };
      window.log = log;
      window.room = await window.sb.joinRoom(`/ws/${room}`, options);
      const r = window.room;
      r.on("join", ({ peer }) => log.joins.push(peer.id));
      r.on("connect", ({ peer }) => log.connects.push(peer.id));
      r.on("leave", ({ peer, reason }) => log.leaves.push({ id: peer.id, reason, at: Date.now() }));
      r.on("error", ({ error }) => log.errors.push(`${error.code}: ${error.message}`));
      r.on("close", (event) => log.closes.push(event));
      r.on("message", ({ peer, channel, data }) => {
        const list = (log.messages[channel] ??= []);
        list.push({
          from: peer.id,
          text: typeof data === "string" ? data : null,
          bytes: typeof data === "string" ? null : data.byteLength,
          head: typeof data === "string" ? null : Array.from(data.subarray(0, 8)),
          tail: typeof data === "string" ? null : data[data.byteLength - 1],
        });
      });
      return r.id;
    },
    { room, options },
  );
}

/** Polls `predicate` in the page until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(page, predicate, arg, timeoutMs = 20000) {
  const handle = await page.waitForFunction(predicate, arg, { timeout: timeoutMs, polling: 50 });
  return handle.jsonValue();
}

/**
 * The ICE candidates the page's connection to peer `other` gathered, as SDP lines without `a=`,
 * once its gathering is complete.
 */
export async function gatheredCandidates(page, other) {
  await waitFor(page, (id) => window.room.connection(id).rtc.iceGatheringState === "complete", other);
  return page.evaluate(
    (id) =>
      window.room
        .connection(id)
        .rtc.localDescription.sdp.split("\r\n")
        .filter((line) => line.startsWith("a=candidate:"))
        .map((line) => line.slice(2)),
    other,
  );
}

/**
 * The candidates (SDP lines) that give away an address of this machine: a host candidate not
 * named by mDNS, or any candidate carrying a non-loopback interface address. Throws when the
 * machine has no such interface, as then there is nothing to hide and the check would be empty.
 */
export function exposedCandidates(candidates) {
  const own = Object.values(networkInterfaces())
    .flat()
    .filter((address) => !address.internal)
    .map((address) => address.address);
  if (own.length === 0) throw new Error("this machine has no network interface besides loopback");
  return candidates.filter((candidate) => {
    const address = candidate.split(" ")[4];
    return own.includes(address) || (candidate.includes(" typ host") && !address.endsWith(".local"));
  });
}

/**
 * Opens the server peer's page (`server` from `startEcho`) in a fresh context of `browser`, with
 * the client loaded as `window.sb`; uncaught errors and unhandled rejections land in
 * `page.problems`.
 */
export async function openEchoPage(server, browser) {
  const page = await (await browser.newContext()).newPage();
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(error.message));
  page.on("console", (message) => {
    if (message.text().startsWith("unhandled rejection")) page.problems.push(message.text());
  });
  await page.goto(`${server.url}/`);
  await page.evaluate(async () => {
    window.sb = await import("/switchboard.js");
    window.addEventListener("unhandledrejection", (event) => console.error(`unhandled rejection: ${event.reason?.message}`));
  });
  return page;
}

/** Waits for a line of the echo server's output that satisfies `predicate`; returns it. */
export async function waitLine(server, predicate, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = server.lines.find(predicate);
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no such line in ${JSON.stringify(server.lines.slice(-10))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Sends five messages to the echo server from the page's `window.conn` (text and binary on both
 * channels, one of 100,000 bytes) and returns `window.got` once the five echoes are in.
 */
export async function echoFive(page) {
  await page.evaluate(() => {
    window.conn.send("reliable", "text over reliable");
    window.conn.send("reliable", new Uint8Array([1, 2, 3, 4, 5]));
    window.conn.send("reliable", new Uint8Array(100_000).fill(9));
    window.conn.send("unreliable", "text over unreliable");
    window.conn.send("unreliable", new Uint8Array([7, 7, 7]));
  });
  await page.waitForFunction(() => window.got.length === 5, null, { timeout: 10000 });
  return page.evaluate(() => window.got);
}

/**
 * Defines `window.pattern(seed, size)` (bytes that depend on both, so a lost, short or reordered
 * message shows) and `window.isPattern(seed, bytes)` in the page.
 */
export async function installPatterns(page) {
  await page.evaluate(() => {
    window.pattern = (seed, size) => {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff;
      return bytes;
    };
    window.isPattern = (seed, bytes) => {
      for (let i = 0; i < bytes.length; i++) if (bytes[i] !== ((i * 31 + seed * 7 + (i >> 10)) & 0xff)) return false;
      return true;
    };
  });
}
