// Auth tokens and TURN, with the real components: `switchboard serve` requiring JWTs and handing
// out TURN REST credentials for Debian's coturn (started here on loopback with use-auth-secret);
// two Chromium pages forced to relay connect through coturn; credentials past their expiry or
// signed with another secret are refused by coturn; refusals reach the client as clear errors.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { connectToServer, joinRoom } from "../../dist/index.js";
import { jwt, startCoturn, turnCredential } from "./coturn.mjs";
import { launchFirefox, openFirefoxPage, waitForFirefox } from "./firefox.mjs";
import { join, launchBrowser, openEchoPage, openPage, startEcho, startServer, waitFor } from "./harness.mjs";

const TURN_SECRET = "coturn-shared-secret";
const JWT_SECRET = "jwt-shared-secret-for-the-tests";
const env = { turn: undefined, server: undefined, browser: undefined, firefox: undefined };
const now = () => Math.floor(Date.now() / 1000);
const token = (claims) => jwt(JWT_SECRET, { exp: now() + 600, ...claims });

before(async () => {
  env.turn = await startCoturn(TURN_SECRET);
  env.server = await startServer([
    "--auth-jwt-secret", JWT_SECRET,
    "--turn-url", env.turn.url,
    "--turn-secret", TURN_SECRET,
    "--turn-ttl", "600",
  ]);
  env.browser = await launchBrowser();
  env.firefox = await launchFirefox();
});

after(async () => {
  await env.firefox?.close();
  await env.browser?.close();
  await env.server?.stop();
  await env.turn?.stop();
});

/**
 * The types (local, remote) of the selected candidate pair of the page's connection to `other`:
 * from the transport's selectedCandidatePairId (Chromium), or the pair Firefox marks `selected`.
 */
async function selectedPair(page, other) {
  return page.evaluate(async (other) => {
    const stats = await window.room.connection(other).rtc.getStats();
    const byId = new Map();
    stats.forEach((s) => byId.set(s.id, s));
    const all = [...byId.values()];
    const viaTransport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
    const pair = viaTransport
      ? byId.get(viaTransport.selectedCandidatePairId)
      : all.find((s) => s.type === "candidate-pair" && s.selected === true);
    if (!pair) return null;
    return [byId.get(pair.localCandidateId).candidateType, byId.get(pair.remoteCandidateId).candidateType];
  }, other);
}

test("two pages forced to relay connect through coturn with the hub's credentials", async () => {
  const pages = [await openPage(env.browser, env.server), await openPage(env.browser, env.server)];
  const options = (sub, host) => ({ token: token({ sub, host }), iceTransportPolicy: "relay" });
  const ids = [await join(pages[0], "relayed", options("ann", true)), await join(pages[1], "relayed", options("bob", false))];
  // welcome carried a TURN entry for this peer, next to the built-in STUN server.
  const turn = await pages[0].evaluate(() => window.room.iceServers.find((s) => String(s.urls).startsWith("turn:")));
  assert.ok(turn, "a TURN entry in welcome");
  assert.match(turn.username, new RegExp(`^\\d+:${ids[0]}$`));
  assert.equal(turn.credential, turnCredential(TURN_SECRET, ids[0], Number(turn.username.split(":")[0])).credential);
  await waitFor(pages[0], (id) => window.log.connects.includes(id), ids[1], 30000);
  await waitFor(pages[1], (id) => window.log.connects.includes(id), ids[0], 30000);
  assert.deepEqual(await selectedPair(pages[0], ids[1]), ["relay", "relay"]);
  assert.deepEqual(await selectedPair(pages[1], ids[0]), ["relay", "relay"]);
  await pages[0].evaluate((other) => window.room.send(other, "reliable", "through the relay"), ids[1]);
  await pages[1].evaluate((other) => window.room.send(other, "unreliable", "and back"), ids[0]);
  await waitFor(pages[1], () => window.log.messages.reliable?.[0]?.text === "through the relay");
  await waitFor(pages[0], () => window.log.messages.unreliable?.[0]?.text === "and back");
  // coturn relayed it: it logged allocations for both peers' user names.
  for (const id of ids) assert.match(env.turn.log(), new RegExp(`${id}`), `coturn saw ${id}`);
  for (const page of pages) assert.deepEqual(page.problems, []);
  await Promise.all(pages.map((p) => p.context().close()));
});

test("coturn refuses a credential past its expiry or signed with another secret", async () => {
  const page = await openPage(env.browser, env.server);
  const gathered = (server) =>
    page.evaluate(async (server) => {
      const pc = new RTCPeerConnection({ iceServers: [server], iceTransportPolicy: "relay" });
      pc.createDataChannel("x");
      const relays = [];
      const errors = [];
      pc.onicecandidate = (e) => e.candidate && relays.push(e.candidate.type);
      pc.onicecandidateerror = (e) => errors.push(e.errorCode);
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
        setTimeout(resolve, 10000);
      });
      pc.close();
      return { relays, errors };
    }, server);
  const urls = [env.turn.url];
  // The control: a valid credential gathers a relay candidate.
  const valid = await gathered({ urls, ...turnCredential(TURN_SECRET, "probe", now() + 600) });
  assert.ok(valid.relays.includes("relay"), JSON.stringify(valid));
  const expired = await gathered({ urls, ...turnCredential(TURN_SECRET, "probe", now() - 60) });
  assert.deepEqual(expired.relays, [], "no relay with an expired credential");
  assert.ok(expired.errors.includes(401), JSON.stringify(expired));
  const forged = await gathered({ urls, ...turnCredential("another secret", "probe", now() + 600) });
  assert.deepEqual(forged.relays, [], "no relay with another secret");
  assert.ok(forged.errors.includes(401), JSON.stringify(forged));
  await page.context().close();
});

test("refused tokens reach the browser and Node clients as clear errors", async () => {
  const page = await openPage(env.browser, env.server);
  const outcome = (options) =>
    page.evaluate(async (options) => {
      try {
        await window.sb.joinRoom("/ws/guarded", options);
        return "joined";
      } catch (error) {
        return [error.code, error.detail];
      }
    }, options);
  assert.deepEqual(await outcome({}), ["unauthorized", "token_missing"]);
  assert.deepEqual(await outcome({ token: jwt(JWT_SECRET, { exp: now() - 600 }) }), ["unauthorized", "token_expired"]);
  assert.deepEqual(await outcome({ token: jwt("not the secret", { exp: now() + 600 }) }), ["unauthorized", "token_signature"]);
  assert.deepEqual(await outcome({ token: token({ sub: "carol" }), user: "mallory" }), ["forbidden", "forbidden"]);
  assert.deepEqual(await outcome({ token: token({ rooms: ["team-*"], host: true }) }), ["forbidden", "forbidden"]);
  assert.deepEqual(page.problems, []);
  await page.context().close();
  // The same from Node with the `ws` package.
  await assert.rejects(joinRoom(`${env.server.ws}/ws/guarded`, { WebSocket }), { code: "unauthorized", detail: "token_missing" });
});

test("fresh TURN credentials reach open connections before the old ones expire", async () => {
  const server = await startServer(["--turn-url", env.turn.url, "--turn-secret", TURN_SECRET, "--turn-ttl", "2"]);
  try {
    const pages = [await openPage(env.browser, server), await openPage(env.browser, server)];
    const ids = [await join(pages[0], "fresh"), await join(pages[1], "fresh")];
    await waitFor(pages[0], (id) => window.log.connects.includes(id), ids[1]);
    const usernames = () =>
      pages[0].evaluate((other) => {
        const find = (list) => list.find((s) => String(s.urls).startsWith("turn:"))?.username;
        return [find(window.room.iceServers), find(window.room.connection(other).rtc.getConfiguration().iceServers)];
      }, ids[1]);
    const [first] = await usernames();
    await waitFor(pages[0], (first) => {
      const other = window.room.peers[0].id;
      const config = window.room.connection(other).rtc.getConfiguration().iceServers;
      return config.some((s) => String(s.urls).startsWith("turn:") && s.username !== first);
    }, first, 5000);
    const [room, connection] = await usernames();
    assert.notEqual(room, first);
    assert.equal(connection, room, "the open connection uses the fresh credential");
    assert.ok(Number(room.split(":")[0]) > Number(first.split(":")[0]), "a later expiry");
    await Promise.all(pages.map((p) => p.context().close()));
  } finally {
    await server.stop();
  }
});

test("a server peer guarded by the hub's tokens: refused without one, WebRTC and the fallback with one", async () => {
  const echo = await startEcho({ jwtSecret: JWT_SECRET });
  try {
    const page = await openEchoPage(echo, env.browser);
    const attempt = (options) =>
      page.evaluate(async (options) => {
        try {
          const conn = await window.sb.connectToServer("/connect", options);
          const got = new Promise((resolve) => conn.on("message", ({ data }) => resolve(data)));
          conn.send("reliable", "guarded echo");
          const back = await got;
          conn.close();
          return [conn.transport, back];
        } catch (error) {
          return [error.code, error.detail];
        }
      }, options);
    assert.deepEqual(await attempt({}), ["unauthorized", "token_missing"]);
    assert.deepEqual(await attempt({ token: jwt("not the secret", { exp: now() + 600 }) }), ["unauthorized", "token_signature"]);
    assert.deepEqual(await attempt({ token: token({}) }), ["webrtc", "guarded echo"]);
    // The fallback carries the token too (UDP made useless by a WebRTC timeout of 1 ms).
    assert.deepEqual(await attempt({ token: token({}), webrtcTimeoutMs: 1 }), ["websocket", "guarded echo"]);
    assert.deepEqual(page.problems, []);
    await page.context().close();
    // Node has no WebRTC: connectToServer goes straight to the fallback, whose refusal is
    // explained too; with the token it connects.
    await assert.rejects(connectToServer(`${echo.url}/connect`, { WebSocket }), { code: "unauthorized", detail: "token_missing" });
    const conn = await connectToServer(`${echo.url}/connect`, { WebSocket, token: token({}) });
    assert.equal(conn.transport, "websocket");
    conn.close();
  } finally {
    await echo.stop();
  }
});

test("a Firefox page and a Chromium page forced to relay meet through coturn", { timeout: 120_000 }, async () => {
  const ff = await openFirefoxPage(env.firefox, env.server.url);
  const ch = await openPage(env.browser, env.server);
  try {
    const options = (sub, host) => ({ token: token({ sub, host }), iceTransportPolicy: "relay" });
    const ffId = await join(ff, "relayed-ff", options("fox", true));
    const chId = await join(ch, "relayed-ff", options("chrome", false));
    await waitForFirefox(ff, (id) => window.log.connects.includes(id), chId, 30000);
    await waitFor(ch, (id) => window.log.connects.includes(id), ffId, 30000);
    assert.deepEqual(await selectedPair(ff, chId), ["relay", "relay"]);
    assert.deepEqual(await selectedPair(ch, ffId), ["relay", "relay"]);
    await ff.evaluate((other) => window.room.send(other, "reliable", "from firefox"), chId);
    await waitFor(ch, () => window.log.messages.reliable?.[0]?.text === "from firefox");
    await ch.evaluate((other) => window.room.send(other, "reliable", "from chromium"), ffId);
    await waitForFirefox(ff, () => window.log.messages.reliable?.[0]?.text === "from chromium");
    assert.deepEqual(ff.problems, []);
  } finally {
    await ff.close();
    await ch.context().close();
  }
});
