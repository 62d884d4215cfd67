/**
 * Switchboard browser client: peer-to-peer rooms over WebRTC data channels, with signaling
 * through a Switchboard server.
 *
 * ```js
 * import { joinRoom } from "/switchboard.js";
 * const room = await joinRoom("/ws/lobby");
 * room.on("message", ({ peer, channel, data }) => console.log(peer.id, channel, data));
 * room.on("connect", ({ peer }) => room.send(peer, "reliable", "hello"));
 * ```
 */
export { Room } from "./room.js";
export type { RoomEvents, Peer } from "./room.js";
export { joinRoom, createRoom, joinByCode, createSession, joinSession, matchmake, listRooms } from "./join.js";
export type { ListedRoom } from "./join.js";
export { DEFAULTS } from "./options.js";
export type { RoomOptions, ConnectionOptions } from "./options.js";
export { SwitchboardError } from "./errors.js";
export { Connection } from "./connection.js";
export type { ChannelInfo, ConnectionEvents } from "./connection.js";
export { RELIABLE, UNRELIABLE, DEFAULT_CHANNELS, MAX_CHANNELS } from "./channels.js";
export type { ChannelOptions, ChannelSpec } from "./channels.js";
export type { Payload, Received } from "./framing.js";
export type { Encoding, PeerInfo, RoomInfo } from "./signaling.js";
export { PROTOCOL_VERSION } from "./signaling.js";
export { pack, unpack } from "./msgpack.js";
export { createPairingOffer, answerPairingOffer, PairingOffer, PairingCode, PAIRING_DEFAULTS } from "./pairing.js";
export type { PairingOptions } from "./pairing.js";
export { parseSdp, buildSdp, encodeDescription, decodeDescription, decodeCode, toQrText, toUrlText, fromQrText, fromUrlText } from "./compact.js";
export type { CompactDescription, CompactCandidate } from "./compact.js";
export { connectToServer, SERVER_DEFAULTS } from "./server.js";
export type { ServerConnection, ServerOptions } from "./server.js";
export { SocketConnection } from "./socket-connection.js";
export { subscribeToPush, base64UrlToBytes } from "./push.js";
