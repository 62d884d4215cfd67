/**
 * The signaling protocol v1 (docs/protocol.md) as pure functions: building the URL, encoding
 * client messages and validating server messages. No sockets here.
 */
import { decode, encode } from "@msgpack/msgpack";
import { SwitchboardError } from "./errors.js";

/** Wire encoding of the signaling socket. */
export type Encoding = "json" | "msgpack";

/** A peer as the server describes it. */
export interface PeerInfo {
  /** 128-bit id assigned by the server, 32 lowercase hex digits. */
  readonly id: string;
  /** User name, when the peer chose one. */
  readonly name?: string;
}

/** Where a client message goes. */
export type Target = "room" | "self" | { peer: string } | { name: string };

/** Messages the client sends. */
export type ClientMessage =
  | { type: "message"; to: Target; data: unknown }
  | { type: "signal"; to: Target; data: unknown }
  | { type: "ping"; nonce: number };

/** The `welcome` message: the first message of every accepted connection. */
export interface Welcome {
  type: "welcome";
  version: number;
  id: string;
  room: string;
  name?: string;
  peers: PeerInfo[];
  ice_servers: RTCIceServer[];
  heartbeat_ms: number;
  idle_timeout_ms: number;
  max_message_bytes: number;
}

/** Messages the server sends. */
export type ServerMessage =
  | Welcome
  | { type: "peer_joined"; id: string; name?: string }
  | { type: "peer_left"; id: string; reason: string }
  | { type: "message"; from: string; data: unknown }
  | { type: "signal"; from: string; data: unknown }
  | { type: "pong"; nonce: number }
  | { type: "error"; code: string; message: string };

/** Protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

const PEER_ID = /^[0-9a-f]{32}$/;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Whether `value` is a well-formed peer id. */
export function isPeerId(value: unknown): value is string {
  return typeof value === "string" && PEER_ID.test(value);
}

/** Whether `value` is a valid room or user name (1-64 of `A-Za-z0-9_.-`). */
export function isValidName(value: unknown): value is string {
  return typeof value === "string" && NAME.test(value);
}

/**
 * Builds the WebSocket URL for a room: `http(s)` becomes `ws(s)`, a relative URL is resolved
 * against `base`, and `v`, `enc` and `user` are set in the query (other parameters are kept).
 */
export function roomUrl(
  url: string,
  base: string | undefined,
  options: { encoding: Encoding; user?: string },
): string {
  let parsed: URL;
  try {
    parsed = base === undefined ? new URL(url) : new URL(url, base);
  } catch {
    throw new SwitchboardError("invalid_options", `not a URL: ${url}`);
  }
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new SwitchboardError("invalid_options", `unsupported URL scheme in ${url}`);
  }
  parsed.searchParams.set("v", String(PROTOCOL_VERSION));
  parsed.searchParams.set("enc", options.encoding);
  if (options.user !== undefined) {
    if (!isValidName(options.user)) {
      throw new SwitchboardError(
        "invalid_options",
        "user names are 1-64 characters of A-Z a-z 0-9 _ . -",
      );
    }
    parsed.searchParams.set("user", options.user);
  }
  return parsed.toString();
}

/** Encodes a client message as a WebSocket frame payload (text for JSON, bytes for MessagePack). */
export function encodeClientMessage(message: ClientMessage, encoding: Encoding): string | Uint8Array {
  return encoding === "json" ? JSON.stringify(message) : encode(message);
}

/**
 * Decodes and validates one frame from the server. Anything that is not a well-formed server
 * message of protocol v1 throws a `SwitchboardError` with code `bad_server_message`; message
 * types this client does not know are returned as `null` (the protocol allows the server to add
 * them).
 */
export function decodeServerMessage(
  frame: string | ArrayBuffer | Uint8Array,
  encoding: Encoding,
): ServerMessage | null {
  let value: unknown;
  try {
    if (typeof frame === "string") {
      if (encoding !== "json") throw new Error("text frame on a MessagePack connection");
      value = JSON.parse(frame);
    } else {
      if (encoding !== "msgpack") throw new Error("binary frame on a JSON connection");
      value = decode(frame instanceof Uint8Array ? frame : new Uint8Array(frame));
    }
  } catch (cause) {
    throw bad(`undecodable frame: ${(cause as Error).message}`);
  }
  return validateServerMessage(value);
}

function bad(message: string): SwitchboardError {
  return new SwitchboardError("bad_server_message", message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalName(record: Record<string, unknown>, what: string): string | undefined {
  const name = record.name;
  if (name === undefined || name === null) return undefined;
  if (typeof name !== "string") throw bad(`${what}: name is not a string`);
  return name;
}

function peerInfo(value: unknown, what: string): PeerInfo {
  if (!isRecord(value) || !isPeerId(value.id)) throw bad(`${what}: missing or malformed peer id`);
  const name = optionalName(value, what);
  return name === undefined ? { id: value.id } : { id: value.id, name };
}

function count(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw bad(`${what} is not a non-negative number`);
  }
  return value;
}

function iceServers(value: unknown): RTCIceServer[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw bad("welcome: ice_servers is not a list");
  return value.map((entry) => {
    if (!isRecord(entry)) throw bad("welcome: an ICE server is not an object");
    const urls = entry.urls;
    const valid =
      typeof urls === "string" ||
      (Array.isArray(urls) && urls.every((url) => typeof url === "string"));
    if (!valid) throw bad("welcome: an ICE server has no urls");
    const server: RTCIceServer = { urls: urls as string | string[] };
    if (typeof entry.username === "string") server.username = entry.username;
    if (typeof entry.credential === "string") server.credential = entry.credential;
    return server;
  });
}

function validateServerMessage(value: unknown): ServerMessage | null {
  if (!isRecord(value) || typeof value.type !== "string") throw bad("not a message object");
  switch (value.type) {
    case "welcome": {
      if (!isPeerId(value.id)) throw bad("welcome: malformed id");
      if (typeof value.room !== "string") throw bad("welcome: missing room");
      if (!Array.isArray(value.peers)) throw bad("welcome: peers is not a list");
      const welcome: Welcome = {
        type: "welcome",
        version: count(value.version, "welcome: version"),
        id: value.id,
        room: value.room,
        peers: value.peers.map((peer) => peerInfo(peer, "welcome")),
        ice_servers: iceServers(value.ice_servers),
        heartbeat_ms: count(value.heartbeat_ms, "welcome: heartbeat_ms"),
        idle_timeout_ms: count(value.idle_timeout_ms, "welcome: idle_timeout_ms"),
        max_message_bytes: count(value.max_message_bytes, "welcome: max_message_bytes"),
      };
      const name = optionalName(value, "welcome");
      if (name !== undefined) welcome.name = name;
      return welcome;
    }
    case "peer_joined": {
      const peer = peerInfo(value, "peer_joined");
      return { type: "peer_joined", ...peer };
    }
    case "peer_left": {
      const { id } = peerInfo(value, "peer_left");
      if (typeof value.reason !== "string") throw bad("peer_left: missing reason");
      return { type: "peer_left", id, reason: value.reason };
    }
    case "message":
    case "signal": {
      if (!isPeerId(value.from)) throw bad(`${value.type}: malformed from`);
      if (!("data" in value)) throw bad(`${value.type}: missing data`);
      return { type: value.type, from: value.from, data: value.data };
    }
    case "pong":
      return { type: "pong", nonce: count(value.nonce, "pong: nonce") };
    case "error":
      if (typeof value.code !== "string") throw bad("error: missing code");
      return {
        type: "error",
        code: value.code,
        message: typeof value.message === "string" ? value.message : value.code,
      };
    default:
      return null;
  }
}
