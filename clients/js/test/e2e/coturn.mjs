// Debian's coturn (`turnserver`) as the real TURN relay of the tests: loopback only, TURN REST
// credentials (`use-auth-secret`), loopback peers allowed (both browsers are on 127.0.0.1).
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { createSocket } from "node:dgram";

/** A free UDP port on 127.0.0.1 (coturn takes the same TCP port; a clash fails its start). */
async function freePort() {
  const socket = createSocket("udp4");
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** Starts coturn with `secret`; resolves to { url (turn:127.0.0.1:PORT), port, log(), stop() }. */
export async function startCoturn(secret) {
  const port = await freePort();
  const child = spawn(
    process.env.TURNSERVER_BIN ?? "/usr/bin/turnserver",
    [
      "-n", // no configuration file
      "--listening-ip=127.0.0.1",
      "--relay-ip=127.0.0.1",
      `--listening-port=${port}`,
      "--use-auth-secret",
      `--static-auth-secret=${secret}`,
      "--realm=switchboard.test",
      "--allow-loopback-peers",
      "--no-cli",
      "--no-tls",
      "--no-dtls",
      "--fingerprint",
      "--log-file=stdout",
      "--simple-log",
      "--verbose",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const deadline = Date.now() + 10000;
  while (!/Total (UDP|General) servers|IPv4. UDP listener opened on/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`turnserver did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `turn:127.0.0.1:${port}`,
    port,
    log: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A TURN REST credential made independently of the server: `<expiry>:<who>`, base64(HMAC-SHA1). */
export function turnCredential(secret, who, expiresUnix) {
  const username = `${expiresUnix}:${who}`;
  return { username, credential: createHmac("sha1", secret).update(username).digest("base64") };
}

/** An HS256 JWT for `claims`, signed with `secret` (test tokens; the server verifies them). */
export function jwt(secret, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}
