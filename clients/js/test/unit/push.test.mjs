// The Web Push helper's key decoding (what `applicationServerKey` gets) against Node's own
// base64url decoder, on both sides of every padding length.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { base64UrlToBytes } from "../../dist/push.js";

test("base64url keys decode to the bytes Node decodes, for every padding length", () => {
  for (const length of [0, 1, 2, 3, 16, 64, 65]) {
    const bytes = randomBytes(length);
    const text = bytes.toString("base64url");
    assert.deepEqual(Buffer.from(base64UrlToBytes(text)), bytes, `length ${length}: ${text}`);
    // Padded and standard-alphabet spellings a server might hand out decode the same.
    assert.deepEqual(Buffer.from(base64UrlToBytes(bytes.toString("base64url") + "=".repeat((4 - (text.length % 4)) % 4))), bytes);
  }
  assert.throws(() => base64UrlToBytes("not base64!"));
});
