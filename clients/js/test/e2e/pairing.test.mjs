// Two Chromium pages connect using only the compact codes the test carries between them (no
// signaling server: the pages only load the client from it), then talk on a reliable and an
// unreliable channel.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { useServerAndBrowser, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after });

/** Records a connection's messages in `window.log`, as the room harness does. */
function record(page) {
  return page.evaluate(() => {
    window.log = { messages: {}, closes: [] };
    window.conn.on("message", ({ channel, data }) => (window.log.messages[channel] ??= []).push(typeof data === "string" ? data : Array.from(data)));
    window.conn.on("close", ({ reason }) => window.log.closes.push(reason));
  });
}

test("two pages pair with compact codes only, within the size target, and exchange messages", async () => {
  const a = await openPage(env.browser, env.server);
  const b = await openPage(env.browser, env.server);
  const offer = await a.evaluate(async () => {
    window.offer = await window.sb.createPairingOffer();
    const sdp = window.offer.connection.rtc.localDescription.sdp;
    return { code: window.offer.code, qrText: window.offer.qrText, bytes: window.offer.bytes, sdpBytes: sdp.length, svg: window.offer.qrSvg().slice(0, 4) };
  });
  const answer = await b.evaluate(async (code) => {
    const { answer, connection } = await window.sb.answerPairingOffer(code);
    window.opening = connection.then((c) => (window.conn = c));
    return { code: answer.code, bytes: answer.bytes, qrText: answer.qrText };
  }, offer.code);
  // Only the codes went between the pages; now A accepts B's answer (the QR text form this time).
  await a.evaluate(async (answer) => {
    window.conn = await window.offer.accept(answer);
  }, answer.qrText);
  await b.evaluate(() => window.opening);
  await record(a);
  await record(b);

  const description = await a.evaluate((code) => window.sb.decodeCode(code), offer.code);
  const v4 = description.candidates.filter((c) => /^\d+\.\d+\.\d+\.\d+$/.test(c.address)).length;
  const other = description.candidates.length - v4;
  // 62 bytes of fixed fields (4-character ufrag, 24-character password, SHA-256), 7 per IPv4
  // candidate, 19 per IPv6 or mDNS candidate.
  assert.equal(offer.bytes, 62 + 7 * v4 + 19 * other, JSON.stringify(description.candidates));
  if (v4 <= 2 && other === 0) assert.ok(offer.bytes <= 100);
  assert.ok(offer.bytes < offer.sdpBytes / 5, `${offer.bytes} B vs ${offer.sdpBytes} B of SDP`);
  assert.ok(answer.bytes <= offer.bytes + 19 * 2, `answer ${answer.bytes} B`);
  assert.equal(offer.svg, "<svg");
  console.log(`offer ${offer.bytes} B (raw SDP ${offer.sdpBytes} B, ${description.candidates.length} candidates), answer ${answer.bytes} B`);

  const info = await a.evaluate(() => ({ unreliable: window.conn.channelInfo("unreliable"), reliable: window.conn.channelInfo("reliable") }));
  assert.deepEqual(info.unreliable, { ordered: false, maxRetransmits: 0, maxPacketLifeTime: null, id: 1 });
  assert.equal(info.reliable.ordered, true);

  await a.evaluate(() => {
    for (let n = 0; n < 50; n++) window.conn.send("reliable", `a${n}`);
    window.conn.send("reliable", new Uint8Array(100_000).fill(7));
    for (let n = 0; n < 10; n++) window.conn.send("unreliable", new Uint8Array([n]));
  });
  await b.evaluate(() => window.conn.send("reliable", "hello back"));
  await waitFor(b, () => window.log.messages.reliable?.length === 51);
  const got = await b.evaluate(() => window.log.messages.reliable.map((m) => (typeof m === "string" ? m : m.length)));
  assert.deepEqual(got, [...Array.from({ length: 50 }, (_, n) => `a${n}`), 100_000]);
  await waitFor(b, () => (window.log.messages.unreliable?.length ?? 0) >= 8);
  await waitFor(a, () => window.log.messages.reliable?.[0] === "hello back");

  // Closing one side is seen by the other.
  await b.close();
  await waitFor(a, () => window.log.closes.length === 1);
  assert.deepEqual([...a.problems], []);
});

test("bad codes are refused with invalid_code, never a crash", async () => {
  const page = await openPage(env.browser, env.server);
  const results = await page.evaluate(async () => {
    const offer = await window.sb.createPairingOffer();
    const codes = ["", "garbage!", offer.code.slice(0, 20), offer.code.slice(0, -2) + (offer.code.endsWith("AA") ? "BA" : "AA"), offer.code];
    const out = [];
    for (const code of codes) {
      try {
        await offer.accept(code); // the last one is an offer, not an answer
        out.push("accepted");
      } catch (e) {
        out.push(e.code);
      }
    }
    try {
      await window.sb.answerPairingOffer("AQID");
    } catch (e) {
      out.push(`${e.code}/${e.detail}`);
    }
    offer.connection.close();
    return out;
  });
  assert.deepEqual(results, ["invalid_code", "invalid_code", "invalid_code", "invalid_code", "invalid_code", "invalid_code/truncated"]);
  assert.deepEqual(page.problems, []);
});
