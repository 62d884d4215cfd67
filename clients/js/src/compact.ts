/**
 * Compact SDP (docs/compact-sdp.md), the same format as the Rust `switchboard_protocol::compact`
 * module: a data-channel-only offer or answer in about 80 bytes, for QR codes and links. Pure
 * functions; both implementations are checked against `testdata/compact-sdp.json`.
 */
import { SwitchboardError } from "./errors.js";

/** Hash functions of DTLS fingerprints, with their digest lengths. */
export const HASHES = Object.freeze({ "sha-256": 32, "sha-384": 48, "sha-512": 64, "sha-1": 20 } as const);
/** A fingerprint hash function name. */
export type HashName = keyof typeof HASHES;

/** One ICE candidate of component 1. */
export interface CompactCandidate {
  type: "host" | "srflx" | "prflx" | "relay";
  protocol: "udp" | "tcp";
  /** For TCP candidates. */
  tcpType?: "passive" | "active" | "so";
  /** IPv4, IPv6 (canonical text), `<uuid>.local`, or another host name. */
  address: string;
  port: number;
}

/** A data-channel-only description, reduced to what a connection needs. */
export interface CompactDescription {
  type: "offer" | "answer";
  iceUfrag: string;
  icePwd: string;
  fingerprint: { algorithm: HashName; digest: Uint8Array };
  setup: "actpass" | "active" | "passive";
  mid: string;
  sctpPort: number;
  maxMessageSize: number;
  candidates: CompactCandidate[];
}

/** The format version, the first byte of every code. */
export const COMPACT_VERSION = 1;
/** Most candidates a code carries. */
export const MAX_CANDIDATES = 32;
/** Largest code accepted. */
export const MAX_CODE_BYTES = 2048;

const DEFAULT_MID = "0";
const DEFAULT_SCTP_PORT = 5000;
const DEFAULT_MAX_MESSAGE_SIZE = 262144;
const ABSENT_MAX_MESSAGE_SIZE = 65536;
const ICE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HASH_NAMES: HashName[] = ["sha-256", "sha-384", "sha-512", "sha-1"];
const TYPES: CompactCandidate["type"][] = ["host", "srflx", "prflx", "relay"];
const TYPE_PREFERENCE = { host: 126, prflx: 110, srflx: 100, relay: 0 };
const SETUPS: CompactDescription["setup"][] = ["actpass", "active", "passive"];
const TCP_TYPES: NonNullable<CompactCandidate["tcpType"]>[] = ["passive", "active", "so"];

function sdpError(message: string): SwitchboardError {
  return new SwitchboardError("invalid_sdp", message);
}

/** A decoding error: `detail` is `truncated`, `oversized`, `unsupported_version`, `checksum` or `invalid`. */
function codeError(detail: string, message: string): SwitchboardError {
  return new SwitchboardError("invalid_code", `${detail}: ${message}`, detail);
}

const validIce = (value: string, min: number) =>
  value.length >= min && value.length <= 255 && [...value].every((c) => ICE.includes(c));

const isGraphic = (text: string) => /^[\x21-\x7e]+$/.test(text);

/** A decimal number of only digits, at most `max`. */
function number(text: string, max: number): number | null {
  if (!/^[0-9]+$/.test(text)) return null;
  const value = Number(text);
  return value <= max ? value : null;
}

// ---- addresses: parsing and formatting exactly as Rust's std::net does ----

function parseIpv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const octets = parts.map((p) => (/^(0|[1-9][0-9]{0,2})$/.test(p) ? Number(p) : 256));
  return octets.every((o) => o <= 255) ? octets : null;
}

function parseGroups(text: string, allowIpv4: boolean): number[] | null {
  if (text === "") return [];
  const pieces = text.split(":");
  const groups: number[] = [];
  for (const [index, piece] of pieces.entries()) {
    if (allowIpv4 && index === pieces.length - 1 && piece.includes(".")) {
      const v4 = parseIpv4(piece);
      if (v4 === null) return null;
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
      groups.push(parseInt(piece, 16));
    } else {
      return null;
    }
  }
  return groups;
}

function parseIpv6(text: string): number[] | null {
  const gap = text.indexOf("::");
  if (gap === -1) {
    const groups = parseGroups(text, true);
    return groups !== null && groups.length === 8 ? groups : null;
  }
  if (text.indexOf("::", gap + 1) !== -1) return null;
  const head = parseGroups(text.slice(0, gap), false);
  const tail = parseGroups(text.slice(gap + 2), true);
  if (head === null || tail === null || head.length + tail.length > 7) return null;
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

function formatIpv6(groups: number[]): string {
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
  }
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (best.length < 2) return hex(groups);
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.length))}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local$/;

type AddressBytes = { kind: 0 | 1 | 2 | 3; bytes: number[] };

/** Canonical text and binary form of a candidate address, or null when it cannot be carried. */
function classify(text: string): { canonical: string; binary: AddressBytes } | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { canonical: v4.join("."), binary: { kind: 0, bytes: v4 } };
  const v6 = parseIpv6(text);
  if (v6 !== null) {
    return { canonical: formatIpv6(v6), binary: { kind: 1, bytes: v6.flatMap((g) => [g >> 8, g & 0xff]) } };
  }
  if (UUID.test(text)) {
    const hex = text.slice(0, 36).replace(/-/g, "");
    const bytes = Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
    return { canonical: text, binary: { kind: 2, bytes } };
  }
  if (text.length === 0 || text.length > 255 || !isGraphic(text)) return null;
  return { canonical: text, binary: { kind: 3, bytes: [text.length, ...[...text].map((c) => c.charCodeAt(0))] } };
}

// ---- SDP ----

function parseCandidate(value: string): CompactCandidate | null {
  const fields = value.split(/[ \t\n\r\f]+/).filter((f) => f !== "");
  if (fields.length < 8 || fields[6] !== "typ") {
    throw sdpError("invalid a=candidate: expected `<foundation> <component> <transport> <priority> <address> <port> typ <type>`");
  }
  if (fields[1] !== "1") return null;
  const type = TYPES.find((t) => t === fields[7]);
  if (type === undefined) throw sdpError("invalid a=candidate: unknown candidate type");
  const port = number(fields[5], 65535);
  if (port === null) throw sdpError("invalid a=candidate: not a port number");
  const extension = (key: string) => {
    for (let i = 8; i + 1 < fields.length + 1; i += 2) if (fields[i] === key) return fields[i + 1];
    return undefined;
  };
  const protocol = fields[2].toLowerCase();
  const candidate: CompactCandidate = { type, protocol: "udp", address: "", port };
  if (protocol === "tcp") {
    const tcpType = TCP_TYPES.find((t) => t === extension("tcptype"));
    if (tcpType === undefined) throw sdpError("invalid a=candidate: tcp candidate without a valid tcptype");
    // Active TCP candidates (Firefox adds one per address) have port 9: nothing can connect to
    // them, and a peer that can exchange a code on one network never needs TCP. Left out.
    if (tcpType === "active") return null;
    candidate.protocol = "tcp";
    candidate.tcpType = tcpType;
  } else if (protocol !== "udp") {
    throw sdpError("invalid a=candidate: transport is not udp or tcp");
  }
  const address = classify(fields[4]);
  if (address === null) throw sdpError("invalid a=candidate: address is empty or longer than 255 bytes");
  candidate.address = address.canonical;
  return candidate;
}

function parseFingerprint(value: string): CompactDescription["fingerprint"] {
  const space = value.indexOf(" ");
  if (space === -1) throw sdpError("invalid a=fingerprint: expected `<hash> <hex>`");
  const algorithm = HASH_NAMES.find((h) => h === value.slice(0, space).toLowerCase());
  if (algorithm === undefined) throw sdpError("invalid a=fingerprint: unsupported hash function");
  const pairs = value.slice(space + 1).trim().split(":");
  if (!pairs.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw sdpError("invalid a=fingerprint: digest is not colon-separated hex");
  }
  if (pairs.length !== HASHES[algorithm]) throw sdpError("invalid a=fingerprint: digest length does not match the hash");
  return { algorithm, digest: Uint8Array.from(pairs.map((p) => parseInt(p, 16))) };
}

/** Reads a data-channel-only offer or answer; throws `invalid_sdp` with the reason. */
export function parseSdp(sdp: string): CompactDescription {
  const found: Partial<CompactDescription> & { candidates: CompactCandidate[] } = { candidates: [] };
  let application = false;
  for (const raw of sdp.split("\n")) {
    const line = raw.trimEnd();
    if (line.startsWith("m=")) {
      if (application) throw sdpError("not a data-channel-only SDP: more than one media section");
      const media = line.slice(2);
      if (!media.startsWith("application ") || !media.endsWith(" webrtc-datachannel")) {
        throw sdpError("not a data-channel-only SDP: a media section that is not a data channel");
      }
      application = true;
      continue;
    }
    if (!line.startsWith("a=")) continue;
    const attribute = line.slice(2);
    const colon = attribute.indexOf(":");
    const name = colon === -1 ? attribute : attribute.slice(0, colon);
    const value = colon === -1 ? "" : attribute.slice(colon + 1);
    switch (name) {
      case "ice-ufrag":
        if (!validIce(value, 4)) throw sdpError("invalid a=ice-ufrag: must be 4-255 ICE characters");
        found.iceUfrag ??= value;
        break;
      case "ice-pwd":
        if (!validIce(value, 22)) throw sdpError("invalid a=ice-pwd: must be 22-255 ICE characters");
        found.icePwd ??= value;
        break;
      case "fingerprint":
        found.fingerprint ??= parseFingerprint(value);
        break;
      case "setup": {
        const setup = SETUPS.find((s) => s === value);
        if (setup === undefined) throw sdpError("invalid a=setup: not actpass, active or passive");
        found.setup ??= setup;
        break;
      }
      case "mid":
        if (value.length === 0 || value.length > 32 || !isGraphic(value)) {
          throw sdpError("invalid a=mid: must be 1-32 visible ASCII characters");
        }
        found.mid ??= value;
        break;
      case "sctp-port": {
        const port = number(value, 65535);
        if (port === null) throw sdpError("invalid a=sctp-port: not a port number");
        found.sctpPort ??= port;
        break;
      }
      case "max-message-size": {
        const size = number(value, 0xffffffff);
        if (size === null) throw sdpError("invalid a=max-message-size: not a number below 2^32");
        found.maxMessageSize ??= size;
        break;
      }
      case "candidate": {
        const candidate = parseCandidate(value);
        if (candidate !== null) found.candidates.push(candidate);
        break;
      }
    }
  }
  if (!application) throw sdpError("not a data-channel-only SDP: no m=application section");
  if (found.setup === undefined) throw sdpError("missing a=setup");
  if (found.iceUfrag === undefined) throw sdpError("missing a=ice-ufrag");
  if (found.icePwd === undefined) throw sdpError("missing a=ice-pwd");
  if (found.fingerprint === undefined) throw sdpError("missing a=fingerprint");
  return {
    type: found.setup === "actpass" ? "offer" : "answer",
    iceUfrag: found.iceUfrag,
    icePwd: found.icePwd,
    fingerprint: found.fingerprint,
    setup: found.setup,
    mid: found.mid ?? DEFAULT_MID,
    sctpPort: found.sctpPort ?? DEFAULT_SCTP_PORT,
    maxMessageSize: found.maxMessageSize ?? ABSENT_MAX_MESSAGE_SIZE,
    candidates: found.candidates,
  };
}

/** Rebuilds an SDP browsers accept; deterministic, and identical to the Rust implementation's. */
export function buildSdp(d: CompactDescription): string {
  let seed = 0n;
  for (let i = 0; i < 8; i++) seed = (seed << 8n) | BigInt(d.fingerprint.digest[i] ?? 0);
  const session = seed & 0x7fffffffffffffffn;
  const lines = [
    "v=0",
    `o=- ${session} 2 IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    `a=group:BUNDLE ${d.mid}`,
    "a=msid-semantic: WMS",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0",
  ];
  d.candidates.forEach((c, index) => {
    const priority = TYPE_PREFERENCE[c.type] * 2 ** 24 + (65535 - Math.min(index, 65535)) * 256 + 255;
    let line = `a=candidate:${index + 1} 1 ${c.protocol} ${priority} ${c.address} ${c.port} typ ${c.type}`;
    if (c.type !== "host") line += " raddr 0.0.0.0 rport 0";
    if (c.protocol === "tcp") line += ` tcptype ${c.tcpType}`;
    lines.push(line);
  });
  if (d.candidates.length > 0) lines.push("a=end-of-candidates");
  const digest = [...d.fingerprint.digest].map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(":");
  lines.push(
    `a=ice-ufrag:${d.iceUfrag}`,
    `a=ice-pwd:${d.icePwd}`,
    "a=ice-options:trickle",
    `a=fingerprint:${d.fingerprint.algorithm} ${digest}`,
    `a=setup:${d.setup}`,
    `a=mid:${d.mid}`,
    `a=sctp-port:${d.sctpPort}`,
    `a=max-message-size:${d.maxMessageSize}`,
  );
  return lines.join("\r\n") + "\r\n";
}

// ---- bytes ----

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, as zlib and Rust's crc32fast compute it). */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of bytes) crc = crcTable[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Flag bit: non-default SCTP port, max message size or mid follow the fingerprint. */
const FLAG_EXTRAS = 0x20;
/** Flag bit: the ICE credentials are lowercase hex (Firefox's), packed 4 bits per character. */
const FLAG_HEX_ICE = 0x40;
/** Flag bit: Firefox's SCTP port, max message size and mid (5000, 1073741823, `0`). */
const FLAG_FIREFOX = 0x80;
/** Firefox's `a=max-message-size`. */
const FIREFOX_MAX_MESSAGE_SIZE = 1073741823;
const HEX_ICE = /^[0-9a-f]*$/;

/** The compact bytes of a description; throws `invalid_sdp` when a field cannot be carried. */
export function encodeDescription(d: CompactDescription): Uint8Array {
  if (!validIce(d.iceUfrag, 4)) throw sdpError("cannot encode: ice-ufrag must be 4-255 ICE characters");
  if (!validIce(d.icePwd, 22)) throw sdpError("cannot encode: ice-pwd must be 22-255 ICE characters");
  if (d.fingerprint.digest.length !== HASHES[d.fingerprint.algorithm]) {
    throw sdpError("cannot encode: fingerprint length does not match its hash");
  }
  if (d.mid.length === 0 || d.mid.length > 32) throw sdpError("cannot encode: mid must be 1-32 bytes");
  if (d.candidates.length > MAX_CANDIDATES) throw sdpError(`cannot encode: more than ${MAX_CANDIDATES} candidates`);
  const firefox = d.mid === DEFAULT_MID && d.sctpPort === DEFAULT_SCTP_PORT && d.maxMessageSize === FIREFOX_MAX_MESSAGE_SIZE;
  const extras = !firefox && (d.mid !== DEFAULT_MID || d.sctpPort !== DEFAULT_SCTP_PORT || d.maxMessageSize !== DEFAULT_MAX_MESSAGE_SIZE);
  const credentials = d.iceUfrag + d.icePwd;
  const hex = HEX_ICE.test(credentials);
  let flags = d.type === "answer" ? 1 : 0;
  flags |= SETUPS.indexOf(d.setup) << 1;
  flags |= HASH_NAMES.indexOf(d.fingerprint.algorithm) << 3;
  if (extras) flags |= FLAG_EXTRAS;
  if (hex) flags |= FLAG_HEX_ICE;
  if (firefox) flags |= FLAG_FIREFOX;
  const out: number[] = [COMPACT_VERSION, flags, d.iceUfrag.length, d.icePwd.length];
  if (hex) {
    // Four bits per lowercase hex character (Firefox's credentials), zero-padded to a byte.
    for (let i = 0; i < credentials.length; i += 2) {
      out.push((parseInt(credentials[i], 16) << 4) | (i + 1 < credentials.length ? parseInt(credentials[i + 1], 16) : 0));
    }
  } else {
    let acc = 0;
    let bits = 0;
    for (const c of credentials) {
      acc = ((acc << 6) | ICE.indexOf(c)) & 0xffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.push((acc >> bits) & 0xff);
      }
    }
    if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
  }
  out.push(...d.fingerprint.digest);
  if (extras) {
    out.push(d.sctpPort >> 8, d.sctpPort & 0xff);
    out.push((d.maxMessageSize >>> 24) & 0xff, (d.maxMessageSize >>> 16) & 0xff, (d.maxMessageSize >>> 8) & 0xff, d.maxMessageSize & 0xff);
    out.push(d.mid.length, ...[...d.mid].map((c) => c.charCodeAt(0)));
  }
  out.push(d.candidates.length);
  for (const c of d.candidates) {
    const address = classify(c.address);
    if (address === null) throw sdpError(`cannot encode: address ${JSON.stringify(c.address)}`);
    const tcp = c.protocol === "tcp" ? 1 : 0;
    const tcpType = tcp ? TCP_TYPES.indexOf(c.tcpType ?? "active") : 0;
    out.push(TYPES.indexOf(c.type) | (address.binary.kind << 2) | (tcp << 4) | (tcpType << 5));
    out.push(...address.binary.bytes, c.port >> 8, c.port & 0xff);
  }
  const crc = crc32(Uint8Array.from(out));
  out.push(crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff);
  return Uint8Array.from(out);
}

/** Reads compact bytes; throws `invalid_code` (with `detail`) on truncated, corrupted, oversized or unknown-version input. */
export function decodeDescription(bytes: Uint8Array): CompactDescription {
  if (bytes.length > MAX_CODE_BYTES) throw codeError("oversized", `${bytes.length} bytes (at most ${MAX_CODE_BYTES})`);
  if (bytes.length > 0 && bytes[0] !== COMPACT_VERSION) {
    throw codeError("unsupported_version", `version ${bytes[0]} (this decoder reads version ${COMPACT_VERSION})`);
  }
  if (bytes.length < 8) throw codeError("truncated", `${bytes.length} bytes is too short`);
  const body = bytes.subarray(0, bytes.length - 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (crc32(body) !== view.getUint32(bytes.length - 4)) {
    throw codeError("checksum", "the code is corrupted or incomplete");
  }
  let at = 1;
  const invalid = (why: string) => codeError("invalid", why);
  const take = (n: number) => {
    if (at + n > body.length) throw invalid("a field runs past the end");
    const slice = body.subarray(at, at + n);
    at += n;
    return slice;
  };
  const byte = () => take(1)[0];
  const flags = byte();
  if (flags & FLAG_EXTRAS && flags & FLAG_FIREFOX) throw invalid("both the extras and the Firefox defaults flag are set");
  const type = flags & 1 ? "answer" : "offer";
  const setupIndex = (flags >> 1) & 3;
  if (setupIndex === 3) throw invalid("unknown setup role");
  const setup = SETUPS[setupIndex];
  if ((type === "offer") !== (setup === "actpass")) throw invalid("offers are actpass, answers active or passive");
  const algorithm = HASH_NAMES[(flags >> 3) & 3];
  const ufragLength = byte();
  const pwdLength = byte();
  if (ufragLength < 4 || pwdLength < 22) throw invalid("ICE ufrag or password too short");
  const chars = ufragLength + pwdLength;
  let text = "";
  if (flags & FLAG_HEX_ICE) {
    for (const b of take(Math.ceil(chars / 2))) text += b.toString(16).padStart(2, "0");
    text = text.slice(0, chars);
  } else {
    let acc = 0;
    let bits = 0;
    for (const b of take(Math.ceil((chars * 6) / 8))) {
      acc = ((acc << 8) | b) & 0xffff;
      bits += 8;
      while (bits >= 6 && text.length < chars) {
        bits -= 6;
        text += ICE[(acc >> bits) & 0x3f];
      }
    }
  }
  const digest = Uint8Array.from(take(HASHES[algorithm]));
  let sctpPort = DEFAULT_SCTP_PORT;
  let maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  let mid = DEFAULT_MID;
  if (flags & FLAG_FIREFOX) maxMessageSize = FIREFOX_MAX_MESSAGE_SIZE;
  if (flags & FLAG_EXTRAS) {
    const fixed = take(6);
    sctpPort = (fixed[0] << 8) | fixed[1];
    maxMessageSize = ((fixed[2] << 24) | (fixed[3] << 16) | (fixed[4] << 8) | fixed[5]) >>> 0;
    const length = byte();
    mid = String.fromCharCode(...take(length));
    if (length === 0 || length > 32 || !isGraphic(mid)) throw invalid("mid must be 1-32 visible ASCII characters");
  }
  const count = byte();
  if (count > MAX_CANDIDATES) throw invalid("too many candidates");
  const candidates: CompactCandidate[] = [];
  for (let i = 0; i < count; i++) {
    const head = byte();
    if (head & 0x80) throw invalid("reserved candidate bit is set");
    let address: string;
    switch ((head >> 2) & 3) {
      case 0:
        address = [...take(4)].join(".");
        break;
      case 1: {
        const raw = take(16);
        address = formatIpv6(Array.from({ length: 8 }, (_, g) => (raw[g * 2] << 8) | raw[g * 2 + 1]));
        break;
      }
      case 2: {
        const hex = [...take(16)].map((b) => b.toString(16).padStart(2, "0")).join("");
        address = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}.local`;
        break;
      }
      default: {
        const length = byte();
        address = String.fromCharCode(...take(length));
        if (length === 0 || !isGraphic(address)) throw invalid("host name must be 1-255 visible ASCII characters");
      }
    }
    const tcp = (head >> 4) & 1;
    const tcpIndex = (head >> 5) & 3;
    if (!tcp && tcpIndex !== 0) throw invalid("tcptype bits on a UDP candidate");
    if (tcp && tcpIndex === 3) throw invalid("unknown tcptype");
    const portBytes = take(2);
    const candidate: CompactCandidate = {
      type: TYPES[head & 3],
      protocol: tcp ? "tcp" : "udp",
      address,
      port: (portBytes[0] << 8) | portBytes[1],
    };
    if (tcp) candidate.tcpType = TCP_TYPES[tcpIndex];
    candidates.push(candidate);
  }
  if (at !== body.length) throw invalid("bytes left after the last candidate");
  return { type, iceUfrag: text.slice(0, ufragLength), icePwd: text.slice(ufragLength), fingerprint: { algorithm, digest }, setup, mid, sctpPort, maxMessageSize, candidates };
}

// ---- text forms ----

/** Base45 (RFC 9285): the text form for QR codes (alphanumeric mode). */
export function toQrText(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 2) {
    let n = i + 1 < bytes.length ? bytes[i] * 256 + bytes[i + 1] : bytes[i];
    const digits = i + 1 < bytes.length ? 3 : 2;
    for (let d = 0; d < digits; d++) {
      out += BASE45[n % 45];
      n = Math.floor(n / 45);
    }
  }
  return out;
}

/** Reads the QR text form; throws `invalid_code`. */
export function fromQrText(text: string): Uint8Array {
  const values = [...text].map((c) => BASE45.indexOf(c));
  if (values.some((v) => v < 0)) throw codeError("invalid", "not a qr code: a character outside the base45 alphabet");
  if (values.length % 3 === 1) throw codeError("invalid", "not a qr code: impossible length");
  const out: number[] = [];
  for (let i = 0; i < values.length; i += 3) {
    if (i + 2 < values.length) {
      const n = values[i] + values[i + 1] * 45 + values[i + 2] * 2025;
      if (n > 65535) throw codeError("invalid", "not a qr code: a group above 65535");
      out.push(n >> 8, n & 0xff);
    } else {
      const n = values[i] + values[i + 1] * 45;
      if (n > 255) throw codeError("invalid", "not a qr code: a final pair above 255");
      out.push(n);
    }
  }
  return Uint8Array.from(out);
}

/** Base64url without padding: the text form for links (`#code`) and copy-paste. */
export function toUrlText(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let c = 0; c < chars; c++) out += BASE64URL[(n >> (18 - 6 * c)) & 63];
  }
  return out;
}

/** Reads the URL text form (canonical unpadded base64url); throws `invalid_code`. */
export function fromUrlText(text: string): Uint8Array {
  const trimmed = text.trim();
  const values = [...trimmed].map((c) => BASE64URL.indexOf(c));
  if (values.some((v) => v < 0) || values.length % 4 === 1) {
    throw codeError("invalid", "not a url code: not unpadded base64url");
  }
  const out: number[] = [];
  for (let i = 0; i < values.length; i += 4) {
    const group = values.slice(i, i + 4);
    const n = group.reduce((acc, v, k) => acc | (v << (18 - 6 * k)), 0);
    const bytes = group.length - 1;
    const leftover = n & ((1 << (8 * (3 - bytes))) - 1);
    if (bytes < 3 && leftover !== 0) throw codeError("invalid", "not a url code: not unpadded base64url");
    for (let b = 0; b < bytes; b++) out.push((n >> (16 - 8 * b)) & 0xff);
  }
  return Uint8Array.from(out);
}

/**
 * Reads a code in either text form (or a link ending in `#code`): the form whose bytes carry a
 * valid checksum wins. The QR form's alphabet includes `%`, so a code is tried as it is before
 * any percent-decoding (a link may percent-encode its fragment). Throws `invalid_code`.
 */
export function decodeCode(text: string): CompactDescription {
  const hash = text.lastIndexOf("#");
  const code = (hash === -1 ? text : text.slice(hash + 1)).replace(/^[\r\n]+|[\r\n]+$/g, "");
  const spellings = [code];
  try {
    const unescaped = decodeURIComponent(code);
    if (unescaped !== code) spellings.push(unescaped);
  } catch {
    // Not percent-encoded: only the code as it is.
  }
  let last: SwitchboardError = codeError("invalid", "not a url or qr code");
  for (const spelling of spellings) {
    for (const read of [fromUrlText, fromQrText]) {
      let bytes: Uint8Array;
      try {
        bytes = read(spelling);
      } catch {
        continue;
      }
      try {
        return decodeDescription(bytes);
      } catch (error) {
        last = error as SwitchboardError;
      }
    }
  }
  throw last;
}
