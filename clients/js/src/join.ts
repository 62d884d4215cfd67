/**
 * Joining: opening the signaling socket, waiting for `welcome`, resuming with a stored token,
 * and the entry points for codes, sessions, matches and the public room list.
 */
import { type ChannelSpec, channelSpecs } from "./channels.js";
import { SwitchboardError, closeError } from "./errors.js";
import { type RoomOptions, type Resolved, joinParams, resolveOptions } from "./options.js";
import { Room } from "./room.js";
import { whyRefused } from "./refusal.js";
import { type JoinParams, type RoomInfo, type ServerMessage, type Welcome, decodeServerMessage, roomUrl } from "./signaling.js";

const TOKEN_PREFIX = "switchboard:resume:";

/**
 * Joins a room and resolves once the server has accepted you. `url` is the room endpoint,
 * e.g. `ws://localhost:8080/ws/lobby` (`http(s)` and relative URLs work too), or `/ws?...` for
 * codes, sessions and matches (see `createRoom`, `joinByCode`, `matchmake`...). Events start on
 * the task after the promise resolves, so handlers attached right after `await` see every peer.
 * Rejects with a `SwitchboardError` (never leaves a rejection unhandled).
 */
export async function joinRoom(url: string, options: RoomOptions = {}): Promise<Room> {
  const resolved = resolveOptions(options);
  const specs = channelSpecs(resolved.channels);
  const params = joinParams(options);
  const key = TOKEN_PREFIX + url;
  const stored = resolved.resume ? readToken(resolved, key) : null;
  if (stored !== null) {
    try {
      return await connect(url, { ...params, resume: stored }, resolved, specs, key);
    } catch (error) {
      if ((error as SwitchboardError).code !== "resume_failed") throw error;
      forgetToken(resolved, key);
    }
  }
  return connect(url, params, resolved, specs, key);
}

function readToken(options: Resolved, key: string): string | null {
  try {
    return options.storage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function forgetToken(options: Resolved, key: string): void {
  try {
    options.storage?.removeItem(key);
  } catch {
    // storage unavailable: nothing to forget
  }
}

async function connect(url: string, params: JoinParams, options: Resolved, specs: ChannelSpec[], key: string): Promise<Room> {
  const { socket, welcome } = await openSignaling(url, params, options);
  const tokens = options.resume ? { storage: options.storage, key } : undefined;
  // A draining node (a cluster's rolling restart) sends its peers elsewhere: the room opens the
  // same URL again with its latest token and carries on.
  const reopen = (token: string) => openSignaling(url, { ...params, resume: token }, options);
  const room = new Room(socket, welcome, specs, options, tokens, reopen);
  setTimeout(() => room.begin(), 0);
  return room;
}

/** A signaling socket that the server has welcomed. */
export interface Signaling {
  socket: WebSocket;
  welcome: Welcome;
}

/** Opens the signaling socket and resolves with it once `welcome` arrives. */
function openSignaling(url: string, params: JoinParams, options: Resolved): Promise<Signaling> {
  return new Promise<Signaling>((resolve, reject) => {
    let socket: WebSocket;
    let target: string;
    try {
      const base = typeof location === "undefined" ? undefined : location.href;
      target = roomUrl(url, base, { encoding: options.encoding, user: options.user, params });
      const Socket = options.WebSocket ?? globalThis.WebSocket;
      if (Socket === undefined) throw new SwitchboardError("invalid_options", "no WebSocket implementation");
      socket = new Socket(target);
    } catch (error) {
      reject(error instanceof SwitchboardError ? error : new SwitchboardError("connection_failed", String((error as Error)?.message ?? error)));
      return;
    }
    socket.binaryType = "arraybuffer";
    let settled = false;
    const fail = (error: SwitchboardError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close();
      } catch {
        // already closed
      }
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new SwitchboardError("join_timeout", `no welcome from the server within ${options.joinTimeoutMs} ms`)),
      options.joinTimeoutMs,
    );
    socket.onerror = () => {
      // The close event that follows carries the details.
    };
    socket.onclose = (event: CloseEvent) => {
      // 1006 before any message: the server may have refused the upgrade with an HTTP status
      // (auth, connection limits) that browsers do not show; ask the same URL over HTTP why.
      if (event.code !== 1006) {
        fail(closeError(event));
        return;
      }
      void whyRefused(target).then((refusal) => fail(refusal ?? closeError(event)));
    };
    socket.onmessage = (event: MessageEvent) => {
      let message: ServerMessage | null;
      try {
        message = decodeServerMessage(event.data, options.encoding);
      } catch (error) {
        fail(error as SwitchboardError);
        return;
      }
      if (message === null) return;
      if (message.type === "error") {
        fail(new SwitchboardError(message.code, message.message));
        return;
      }
      if (message.type !== "welcome") {
        fail(new SwitchboardError("bad_server_message", `expected welcome, got ${message.type}`));
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      resolve({ socket, welcome: message });
    };
  });
}

function endpoint(server: string, query: Record<string, string>): string {
  const base = server.replace(/\/+$/, "");
  return `${base}/ws?${new URLSearchParams(query).toString()}`;
}

/** Creates a room with a short code (`room.room`, e.g. `K7PX3Q`) for friends to type. `server` is the server's base URL (`""`: this page's). */
export function createRoom(server: string, options: RoomOptions = {}): Promise<Room> {
  return joinRoom(endpoint(server, { create: "code" }), options);
}

/** Joins a room by its code; case, spaces and dashes do not matter. Rejects with `no_such_room`. */
export function joinByCode(server: string, code: string, options: RoomOptions = {}): Promise<Room> {
  return joinRoom(endpoint(server, { code }), options);
}

/** Creates a one-to-one session (`room.room` is its 128-bit id): a star of two, closed when its host leaves. */
export function createSession(server: string, options: RoomOptions = {}): Promise<Room> {
  return joinRoom(endpoint(server, { create: "session" }), options);
}

/** Joins a session by id. Rejects with `room_full` if it already has two peers, `no_such_room` if it does not exist. */
export function joinSession(server: string, id: string, options: RoomOptions = {}): Promise<Room> {
  return joinRoom(endpoint(server, { session: id }), options);
}

/** Puts you in the next match of `players` peers (with the same `key`, e.g. a game mode); the room emits `started` when full. */
export function matchmake(server: string, players: number, options: RoomOptions & { key?: string } = {}): Promise<Room> {
  const query: Record<string, string> = { match: String(players) };
  if (options.key !== undefined) query.key = options.key;
  return joinRoom(endpoint(server, query), options);
}

/** A public room, as `/rooms` lists it. */
export interface ListedRoom {
  room: string;
  players: number;
  info: RoomInfo;
}

/** The server's public rooms; `open: true` keeps only those you could join now. */
export async function listRooms(server: string, options: { open?: boolean; token?: string } = {}): Promise<ListedRoom[]> {
  const query = new URLSearchParams();
  if (options.open) query.set("open", "true");
  if (options.token !== undefined) query.set("token", options.token);
  const search = query.toString();
  const url = `${server.replace(/\/+$/, "")}/rooms${search ? `?${search}` : ""}`;
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new SwitchboardError("connection_failed", `cannot list rooms: ${(error as Error).message}`);
  }
  if (!response.ok) {
    const refusal = (await response.json().catch(() => null)) as { error?: unknown; message?: unknown; reason?: unknown } | null;
    if (typeof refusal?.error === "string") {
      const reason = typeof refusal.reason === "string" ? refusal.reason : undefined;
      throw new SwitchboardError(refusal.error, `cannot list rooms (HTTP ${response.status}): ${String(refusal.message ?? refusal.error)}`, reason);
    }
    throw new SwitchboardError("connection_failed", `cannot list rooms: HTTP ${response.status}`);
  }
  const body = (await response.json().catch(() => null)) as { rooms?: unknown } | null;
  if (body === null || !Array.isArray(body.rooms)) throw new SwitchboardError("bad_server_message", "the room list is not {rooms: [...]}");
  return body.rooms as ListedRoom[];
}
