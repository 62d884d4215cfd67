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
  /** The peer may come back with the same id after its connection drops (resume tokens). */
  readonly resumable?: boolean;
}

/** A room's settings and state (`welcome.room_info`, and the `/rooms` list). */
export interface RoomInfo {
  kind: "named" | "code" | "session" | "match";
  topology: "mesh" | "star";
  capacity: number;
  /** The host's id (the creator, or whoever took over). */
  host?: string;
  host_leaves: "migrate" | "close";
  public: boolean;
  meta?: Record<string, unknown>;
  /** Matches: full and started. */
  started?: boolean;
}

/** Where a client message goes. */
export type Target = "room" | "self" | { peer: string } | { name: string };

/** Messages the client sends. */
export type ClientMessage =
  | { type: "message"; to: Target; data: unknown }
  | { type: "signal"; to: Target; data: unknown }
  | { type: "ping"; nonce: number }
  | { type: "kick"; peer: string }
  | { type: "set_meta"; meta: Record<string, unknown> }
  | { type: "detach" }
  | { type: "gone"; peer: string }
  | { type: "push_subscribe"; subscription: PushSubscriptionJSON }
  | { type: "push_unsubscribe" }
  | { type: "connection_request"; name: string };

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
  /** How long a resumable peer whose connection broke can resume, in ms (absent from older servers). */
  resume_grace_ms?: number;
  /** How long a detached peer stays in its room unless reported gone, in ms (absent from older servers). */
  detached_ttl_ms?: number;
  room_info: RoomInfo;
  /** When joined with `resumable=true`: reconnect with it to keep the id. Secret, single-use. */
  resume_token?: string;
  /** This connection resumed an earlier one. */
  resumed?: boolean;
}

/** Messages the server sends. */
export type ServerMessage =
  | Welcome
  | { type: "peer_joined"; id: string; name?: string; resumable?: boolean }
  | { type: "peer_left"; id: string; reason: string }
  | { type: "message"; from: string; data: unknown }
  | { type: "signal"; from: string; data: unknown }
  | { type: "pong"; nonce: number }
  | { type: "host_changed"; host: string }
  | { type: "room_started" }
  | { type: "room_updated"; meta: Record<string, unknown> }
  | { type: "ice_servers"; ice_servers: RTCIceServer[] }
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

/** Query parameters of a join besides version, encoding and user (docs/protocol.md). */
export type JoinParams = Record<string, string | undefined>;

/**
 * Builds the WebSocket URL for a room: `http(s)` becomes `ws(s)`, a relative URL is resolved
 * against `base`, and `v`, `enc`, `user` and `params` are set in the query (other parameters are
 * kept).
 */
export function roomUrl(
  url: string,
  base: string | undefined,
  options: { encoding: Encoding; user?: string; params?: JoinParams },
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
  for (const [key, value] of Object.entries(options.params ?? {})) {
    if (value !== undefined) parsed.searchParams.set(key, value);
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
  const peer: { id: string; name?: string; resumable?: boolean } = { id: value.id };
  if (name !== undefined) peer.name = name;
  if (value.resumable === true) peer.resumable = true;
  return peer;
}

function roomInfo(value: unknown): RoomInfo {
  if (!isRecord(value)) throw bad("welcome: room_info is not an object");
  const oneOf = <T extends string>(field: string, allowed: readonly T[]): T => {
    const v = value[field];
    if (typeof v !== "string" || !allowed.includes(v as T)) throw bad(`room_info: bad ${field}`);
    return v as T;
  };
  const info: RoomInfo = {
    kind: oneOf("kind", ["named", "code", "session", "match"] as const),
    topology: oneOf("topology", ["mesh", "star"] as const),
    capacity: count(value.capacity, "room_info: capacity"),
    host_leaves: oneOf("host_leaves", ["migrate", "close"] as const),
    public: value.public === true,
  };
  if (value.host !== undefined && value.host !== null) {
    if (!isPeerId(value.host)) throw bad("room_info: malformed host");
    info.host = value.host;
  }
  if (value.meta !== undefined && value.meta !== null) {
    if (!isRecord(value.meta)) throw bad("room_info: meta is not an object");
    info.meta = value.meta;
  }
  if (value.started === true) info.started = true;
  return info;
}

function count(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw bad(`${what} is not a non-negative number`);
  }
  return value;
}

function iceServers(value: unknown, what: string): RTCIceServer[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw bad(`${what}: ice_servers is not a list`);
  return value.map((entry) => {
    if (!isRecord(entry)) throw bad(`${what}: an ICE server is not an object`);
    const urls = entry.urls;
    const valid =
      typeof urls === "string" ||
      (Array.isArray(urls) && urls.every((url) => typeof url === "string"));
    if (!valid) throw bad(`${what}: an ICE server has no urls`);
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
        ice_servers: iceServers(value.ice_servers, "welcome"),
        heartbeat_ms: count(value.heartbeat_ms, "welcome: heartbeat_ms"),
        idle_timeout_ms: count(value.idle_timeout_ms, "welcome: idle_timeout_ms"),
        max_message_bytes: count(value.max_message_bytes, "welcome: max_message_bytes"),
        room_info: roomInfo(value.room_info),
      };
      const name = optionalName(value, "welcome");
      if (name !== undefined) welcome.name = name;
      if (value.resume_grace_ms !== undefined) welcome.resume_grace_ms = count(value.resume_grace_ms, "welcome: resume_grace_ms");
      if (value.detached_ttl_ms !== undefined) welcome.detached_ttl_ms = count(value.detached_ttl_ms, "welcome: detached_ttl_ms");
      if (value.resume_token !== undefined) {
        if (typeof value.resume_token !== "string" || !/^[0-9a-f]{32}$/.test(value.resume_token)) {
          throw bad("welcome: malformed resume_token");
        }
        welcome.resume_token = value.resume_token;
      }
      if (value.resumed === true) welcome.resumed = true;
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
    case "host_changed":
      if (!isPeerId(value.host)) throw bad("host_changed: malformed host");
      return { type: "host_changed", host: value.host };
    case "room_started":
      return { type: "room_started" };
    case "room_updated":
      if (!isRecord(value.meta)) throw bad("room_updated: meta is not an object");
      return { type: "room_updated", meta: value.meta };
    case "ice_servers":
      if (!Array.isArray(value.ice_servers)) throw bad("ice_servers: ice_servers is not a list");
      return { type: "ice_servers", ice_servers: iceServers(value.ice_servers, "ice_servers") };
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
