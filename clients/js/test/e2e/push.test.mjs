// Web Push through the browser client: a Chromium page registers a push subscription with
// `room.pushSubscribe`, leaves, and another page's `room.requestConnection` reaches it through the
// local push service of the Rust tests (crates/server/tests/data/push_service.py: Python's
// http_ece decrypts, `cryptography` verifies VAPID). Headless Chromium has no push service of its
// own, so the subscription comes from that service instead of `pushManager.subscribe`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { join, launchBrowser, openPage, startServer, waitFor } from "./harness.mjs";

const data = fileURLToPath(new URL("../../../../crates/server/tests/data/", import.meta.url));
const env = { service: undefined, port: undefined, server: undefined, browser: undefined };

before(async () => {
  env.service = spawn("python3", [`${data}push_service.py`], { stdio: ["pipe", "pipe", "inherit"] });
  const [line] = await once(env.service.stdout, "data");
  env.port = Number(/listening (\d+)/.exec(String(line))[1]);
  env.server = await startServer([
    "--push-vapid-key", `${data}vapid.pem`,
    "--push-subject", "mailto:tests@switchboard.invalid",
    "--push-allow-http-endpoints",
  ]);
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.server?.stop();
  env.service?.stdin.end();
});

const service = async (path) => (await fetch(`http://127.0.0.1:${env.port}${path}`)).json();

test("a page's push subscription gets another page's connection request once it has left", async () => {
  const { id, subscription } = await service("/new?status=201");
  const ann = await openPage(env.browser, env.server);
  await join(ann, "push-room", { user: "ann" });
  await ann.evaluate((subscription) => window.room.pushSubscribe(subscription), subscription);
  const bob = await openPage(env.browser, env.server);
  await join(bob, "push-room", { user: "bob" });
  // The page can read the server's VAPID key the way subscribeToPush does.
  const key = await bob.evaluate(async () => (await fetch("/push/vapid-public-key")).text());
  assert.match(key, /^[A-Za-z0-9_-]{87}$/, "an uncompressed P-256 key, base64url");
  await ann.context().close();
  await waitFor(bob, () => window.log.leaves.length === 1);
  await bob.evaluate(() => window.room.requestConnection("ann"));
  let received = [];
  for (let i = 0; i < 100 && received.length === 0; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    received = await service(`/received/${id}`);
  }
  assert.equal(received.length, 1, JSON.stringify(received));
  assert.equal(received[0].error, null, received[0].error);
  assert.equal(received[0].payload.sender, "bob");
  assert.equal(received[0].payload.room, "push-room");
  assert.equal(received[0].payload.url, `${env.server.ws}/ws/push-room`);
  assert.equal(received[0].vapid.key, key);
  // A second request for someone with no subscription is refused with a clear error.
  await bob.evaluate(() => window.room.requestConnection("nobody"));
  await waitFor(bob, () => window.log.errors.some((e) => e.startsWith("unknown_name")));
  assert.deepEqual(bob.problems, []);
  await bob.context().close();
});
