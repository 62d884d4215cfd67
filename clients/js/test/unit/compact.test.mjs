// The browser client's compact SDP codec against the vectors the Rust implementation also
// reads (testdata/compact-sdp.json): same bytes, same text forms, same rebuilt SDP, same errors.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  buildSdp, decodeCode, decodeDescription, encodeDescription, fromQrText, fromUrlText, parseSdp, toQrText, toUrlText,
} from "../../dist/compact.js";

const vectors = JSON.parse(readFileSync(new URL("../../../../testdata/compact-sdp.json", import.meta.url), "utf8"));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => Uint8Array.from(Buffer.from(text, "hex"));

for (const vector of vectors.valid) {
  test(`vector ${vector.name}: same bytes, text forms and rebuilt SDP as Rust`, () => {
    const description = parseSdp(vector.sdp);
    const bytes = encodeDescription(description);
    assert.equal(hex(bytes), vector.hex);
    assert.equal(bytes.length, vector.bytes);
    assert.equal(toQrText(bytes), vector.qr);
    assert.equal(toUrlText(bytes), vector.url);
    assert.equal(buildSdp(description), vector.rebuilt_sdp);
    assert.deepEqual(decodeDescription(bytes), description);
    assert.deepEqual(fromQrText(vector.qr), bytes);
    assert.deepEqual(fromUrlText(vector.url), bytes);
    assert.deepEqual(decodeCode(vector.qr), description);
    assert.deepEqual(decodeCode(`https://example.net/demo/pair#${vector.url}`), description);
    assert.deepEqual(parseSdp(vector.rebuilt_sdp), description);
  });
}

test("a QR code whose text holds %XX sequences is read as it is, not percent-decoded", () => {
  // Base45 has '%' in its alphabet, so "%3A" and the like occur in real codes (a CI run failed
  // on one). Vary the ufrag and fingerprint of a real vector until its QR text reads as valid percent-encoding.
  const base = parseSdp(vectors.valid[0].sdp);
  let found = 0;
  let seed = 7;
  const randomByte = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23;
  for (let n = 0; n < 4000 && found < 20; n++) {
    const digest = base.fingerprint.digest.map(randomByte);
    const iceUfrag = Array.from({ length: 4 }, () => "abcdefghijklmnopqrstuvwxyz0123456789"[randomByte() % 36]).join("");
    const description = { ...base, iceUfrag, fingerprint: { ...base.fingerprint, digest } };
    const qr = toQrText(encodeDescription(description));
    let unescaped;
    try {
      unescaped = decodeURIComponent(qr);
    } catch {
      continue; // a lone '%': not mistaken for percent-encoding
    }
    if (unescaped === qr) continue;
    found++;
    assert.deepEqual(decodeCode(qr), description, qr);
    assert.deepEqual(decodeCode(`https://example.net/demo/pair#${encodeURIComponent(toUrlText(encodeDescription(description)))}`), description);
  }
  assert.ok(found >= 5, `only ${found} codes with %XX among 4000`);
});

test("the real Chromium offer with two IPv4 candidates is within 100 bytes", () => {
  const vector = vectors.valid.find((v) => v.name === "chromium-offer-2-ipv4");
  assert.ok(vector.bytes <= 100, `${vector.bytes} bytes`);
  assert.equal(parseSdp(vector.sdp).candidates.length, 2);
});

for (const vector of vectors.invalid) {
  test(`invalid code "${vector.name}" is refused with ${vector.error}`, () => {
    assert.throws(() => decodeDescription(unhex(vector.hex)), (error) => {
      assert.equal(error.code, "invalid_code");
      assert.equal(error.detail, vector.error, error.message);
      return true;
    });
  });
}

test("every truncation and single-byte corruption of every vector is refused", () => {
  for (const vector of vectors.valid) {
    const bytes = unhex(vector.hex);
    for (let len = 0; len < bytes.length; len++) assert.throws(() => decodeDescription(bytes.subarray(0, len)), { code: "invalid_code" });
    for (let at = 0; at < bytes.length; at++) {
      const corrupted = Uint8Array.from(bytes);
      corrupted[at] ^= 0x5a;
      assert.throws(() => decodeDescription(corrupted), { code: "invalid_code" });
    }
  }
});

test("text forms refuse foreign characters and impossible lengths; garbage never throws anything else", () => {
  for (const bad of ["a", "abcd!", "é", "AB=="]) assert.throws(() => fromUrlText(bad), { code: "invalid_code" });
  for (const bad of ["A", "abc", "GGW", "::::"]) assert.throws(() => fromQrText(bad), { code: "invalid_code" });
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 3000; i++) {
    const text = Array.from({ length: Math.floor(random() * 150) }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join("");
    for (const read of [decodeCode, parseSdp]) {
      try {
        read(text);
      } catch (error) {
        assert.ok(["invalid_code", "invalid_sdp"].includes(error.code), `${error.code}: ${error.message}`);
      }
    }
  }
});

test("SDP that is not a data channel is refused with a reason", () => {
  const sdp = vectors.valid[0].sdp;
  assert.throws(() => parseSdp(""), /no m=application/);
  assert.throws(() => parseSdp(sdp.replace("a=setup:actpass\r\n", "")), /missing a=setup/);
  assert.throws(() => parseSdp(sdp.replace("m=application", "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=application")), /not a data channel/);
  assert.throws(() => parseSdp(sdp.replace("sha-256 ", "md5 ")), /unsupported hash/);
});
