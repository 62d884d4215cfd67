// The demo pages served by `switchboard serve` work in two tabs, as a newcomer would use them.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { useServerAndBrowser, join, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after });

async function openDemo(path) {
  const page = await (await env.browser.newContext()).newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(`${env.server.url}${path}`);
  return { page, problems };
}

test("chat demo: a line typed in one tab appears in the other", async () => {
  const a = await openDemo("/demo/chat?room=e2e-chat");
  const b = await openDemo("/demo/chat?room=e2e-chat");
  for (const { page } of [a, b]) {
    await page.waitForFunction(() => window.room?.peers?.some((p) => p.connected), null, { timeout: 20000 });
  }
  await a.page.fill("#text", "hello from tab A");
  await a.page.press("#text", "Enter");
  await b.page.waitForFunction(() => document.getElementById("log").textContent.includes(": hello from tab A"), null, { timeout: 10000 });
  // Two people in the room: the count includes the reader.
  for (const { page } of [a, b]) {
    await page.waitForFunction(() => document.getElementById("peers").textContent === "1 connected, 2 in the room (you included).", null, { timeout: 5000 });
  }
  assert.deepEqual([...a.problems, ...b.problems], []);
});

test("dots demo: each tab receives the other's position at about 30 Hz over the unreliable channel", async () => {
  const a = await openDemo("/demo/dots?room=e2e-dots");
  const b = await openDemo("/demo/dots?room=e2e-dots");
  for (const { page } of [a, b]) {
    await page.waitForFunction(() => /1 other player\(s\) connected · (2[5-9]|3\d) updates\/s/.test(document.getElementById("stats").textContent), null, { timeout: 20000 });
  }
  assert.deepEqual([...a.problems, ...b.problems], []);
});

test("a MessagePack-signaling peer and a JSON-signaling peer connect", async () => {
  const json = await openPage(env.browser, env.server);
  const msgpack = await openPage(env.browser, env.server);
  const jsonId = await join(json, "mixed-encodings");
  const msgpackId = await join(msgpack, "mixed-encodings", { encoding: "msgpack" });
  await waitFor(json, (id) => window.log.connects.includes(id), msgpackId);
  await msgpack.evaluate((id) => window.room.send(id, "reliable", new Uint8Array([1, 2, 3])), jsonId);
  await waitFor(json, () => window.log.messages.reliable?.[0]?.bytes === 3);
});

test("pairing demo: A's link opened in B, B's answer code pasted in A, then they chat", async () => {
  const a = await openDemo("/demo/pair");
  await a.page.click("#create");
  const link = await a.page.waitForFunction(() => document.getElementById("offer-link").href || null, null, { timeout: 10000 });
  const b = await openDemo(new URL(await link.jsonValue()).pathname + new URL(await link.jsonValue()).hash);
  const answer = await b.page.waitForFunction(() => document.getElementById("answer-code").textContent || null, null, { timeout: 10000 });
  await a.page.fill("#answer-in", await answer.jsonValue());
  await a.page.click("#accept");
  for (const { page } of [a, b]) await page.waitForSelector("#chat:not([hidden])", { timeout: 15000 });
  await b.page.fill("#text", "paired!");
  await b.page.press("#text", "Enter");
  await a.page.waitForFunction(() => document.getElementById("log").textContent.includes("them: paired!"), null, { timeout: 10000 });
  assert.match(await a.page.textContent("#offer-size"), /\(\d{2,3} bytes\)/);
  assert.deepEqual([...a.problems, ...b.problems], []);
});
