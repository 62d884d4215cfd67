// Lobbies in Chromium: a star room (clients connect only to the host), auto-matching four
// pages, a page that reloads and keeps its identity, and close-after-connect.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { useServerAndBrowser, openPage, waitFor } from "./harness.mjs";

const env = useServerAndBrowser({ before, after }, ["--resume-grace-ms", "8000"]);

/** Runs `joinExpression` (an async function body using `sb`) in the page and records events. */
async function enter(page, joinExpression) {
  return page.evaluate(async (body) => {
    const log = { joins: [], connects: [], leaves: [], states: [], messages: [], errors: [], started: 0, hosts: [] };
    window.log = log;
    const sb = window.sb;
    window.room = await new Function("sb", `return (async () => { ${body} })()`)(sb);
    const r = window.room;
    r.on("join", ({ peer }) => log.joins.push(peer.id));
    r.on("connect", ({ peer }) => log.connects.push(peer.id));
    r.on("leave", ({ peer, reason }) => log.leaves.push({ id: peer.id, reason }));
    r.on("state", ({ peer, state }) => log.states.push({ id: peer.id, state }));
    r.on("message", ({ peer, data }) => log.messages.push({ from: peer.id, data: typeof data === "string" ? data : data.length }));
    r.on("error", ({ error }) => log.errors.push(error.code));
    r.on("started", () => log.started++);
    r.on("host", ({ host }) => log.hosts.push(host));
    return { id: r.id, room: r.room, host: r.host, info: r.info, resumed: r.resumed };
  }, joinExpression);
}

test("star room: clients connect only to the host, and talk through it", async () => {
  const pages = await Promise.all([0, 1, 2].map(() => openPage(env.browser, env.server)));
  const host = await enter(pages[0], `return sb.joinRoom("/ws/star-room", { topology: "star" });`);
  const a = await enter(pages[1], `return sb.joinRoom("/ws/star-room");`);
  const b = await enter(pages[2], `return sb.joinRoom("/ws/star-room");`);
  assert.equal(host.info.topology, "star");
  assert.equal(a.host, host.id);
  assert.equal(b.host, host.id);
  await waitFor(pages[0], (ids) => ids.every((id) => window.log.connects.includes(id)), [a.id, b.id]);
  await waitFor(pages[1], (id) => window.log.connects.includes(id), host.id);
  await waitFor(pages[2], (id) => window.log.connects.includes(id), host.id);
  await new Promise((r) => setTimeout(r, 500));
  // The clients know each other (presence) but have no connection to each other.
  const view = await pages[1].evaluate((other) => ({
    joins: window.log.joins,
    connected: window.room.peers.filter((p) => p.connected).map((p) => p.id),
    toOther: window.room.connection(other) === undefined,
    error: (() => { try { window.room.send(other, "reliable", "x"); } catch (e) { return e.code; } })(),
  }), b.id);
  assert.ok(view.joins.includes(b.id));
  assert.deepEqual(view.connected, [host.id]);
  assert.ok(view.toOther);
  assert.equal(view.error, "peer_not_connected");
  // The host relays: client A -> host -> client B.
  await pages[0].evaluate(() => {
    window.room.on("message", ({ peer, data }) => {
      for (const p of window.room.peers) if (p.id !== peer.id && p.connected) window.room.send(p.id, "reliable", `relayed: ${data}`);
    });
  });
  await pages[1].evaluate((hostId) => window.room.send(hostId, "reliable", "hi all"), host.id);
  await waitFor(pages[2], () => window.log.messages.some((m) => m.data === "relayed: hi all"));
  // Kick: only the host can.
  const notHost = await pages[1].evaluate((other) => { try { window.room.kick(other); } catch (e) { return e.code; } }, b.id);
  assert.equal(notHost, "not_host");
  await pages[0].evaluate((id) => window.room.kick(id), b.id);
  await waitFor(pages[2], () => window.room.isClosed);
  await waitFor(pages[0], (id) => window.log.leaves.some((l) => l.id === id), b.id);
  for (const page of pages) assert.deepEqual(page.problems, []);
});

test("auto-match: four pages land in one match, all connected, and it starts", async () => {
  const pages = await Promise.all([0, 1, 2, 3].map(() => openPage(env.browser, env.server)));
  const joined = await Promise.all(pages.map((page) => enter(page, `return sb.matchmake("", 4, { key: "e2e" });`)));
  const room = joined[0].room;
  assert.ok(room.startsWith("match-"), room);
  assert.ok(joined.every((j) => j.room === room), JSON.stringify(joined.map((j) => j.room)));
  for (const [i, page] of pages.entries()) {
    const others = joined.filter((_, j) => j !== i).map((j) => j.id);
    await waitFor(page, (ids) => ids.every((id) => window.log.connects.includes(id)), others);
    await waitFor(page, () => window.room.info.started === true);
  }
  // Those who were there before the fourth player heard `started`.
  const heard = await Promise.all(pages.map((page) => page.evaluate(() => window.log.started)));
  assert.ok(heard.filter((n) => n === 1).length >= 3, JSON.stringify(heard));
  // A fifth player gets a new match.
  const fifth = await openPage(env.browser, env.server);
  const late = await enter(fifth, `return sb.matchmake("", 4, { key: "e2e" });`);
  assert.notEqual(late.room, room);
});

test("a page that reloads keeps its id; the others see no leave and reconnect to it", async () => {
  const stay = await openPage(env.browser, env.server);
  const reloader = await openPage(env.browser, env.server);
  const first = await enter(reloader, `return sb.joinRoom("/ws/reload-room", { resume: true });`);
  const other = await enter(stay, `return sb.joinRoom("/ws/reload-room", { resume: true });`);
  await waitFor(stay, (id) => window.log.connects.includes(id), first.id);
  await reloader.reload();
  await reloader.evaluate(async () => {
    window.sb = await import("/switchboard.js");
  });
  const again = await enter(reloader, `return sb.joinRoom("/ws/reload-room", { resume: true });`);
  assert.equal(again.id, first.id, "same identity after reload");
  assert.equal(again.resumed, true);
  await waitFor(reloader, (id) => window.log.connects.includes(id), other.id);
  await waitFor(stay, (id) => window.log.connects.filter((c) => c === id).length === 2, first.id);
  const seen = await stay.evaluate(() => window.log);
  assert.deepEqual(seen.leaves, [], "no leave");
  assert.deepEqual(seen.joins, [first.id], "no second join");
  assert.ok(seen.states.some((s) => s.id === first.id && s.state === "disconnected"));
  await reloader.evaluate((id) => window.room.send(id, "reliable", "back again"), other.id);
  await waitFor(stay, () => window.log.messages.some((m) => m.data === "back again"));
  // Leaving for good is a leave, at once.
  await reloader.evaluate(() => window.room.close());
  await waitFor(stay, (id) => window.log.leaves.some((l) => l.id === id && l.reason === "closed"), first.id, 3000);
});

test("close-after-connect: a full session detaches from signaling and keeps talking", async () => {
  const host = await openPage(env.browser, env.server);
  const guest = await openPage(env.browser, env.server);
  const created = await enter(host, `return sb.createSession("", { closeSignalingWhenConnected: true });`);
  assert.equal(created.info.kind, "session");
  const joined = await enter(guest, `return sb.joinSession("", ${JSON.stringify(created.room)}, { closeSignalingWhenConnected: true });`);
  for (const page of [host, guest]) await waitFor(page, () => window.room.signaling === "detached");
  await guest.evaluate((id) => window.room.send(id, "reliable", "no server needed now"), created.id);
  await waitFor(host, () => window.log.messages.some((m) => m.data === "no server needed now"));
  // A third peer is refused: the session still has its two members.
  const third = await openPage(env.browser, env.server);
  const refused = await third.evaluate(async (id) => {
    try {
      await window.sb.joinSession("", id);
      return "joined";
    } catch (e) {
      return e.code;
    }
  }, created.room);
  assert.equal(refused, "room_full");
  // When the guest's page goes, the host's data channel says so.
  await guest.close();
  await waitFor(host, (id) => window.log.leaves.some((l) => l.id === id), joined.id);
});
