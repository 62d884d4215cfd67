/**
 * Who is in the room, as a pure state machine whose only job is that every peer is announced
 * joined once and left once, whichever of the signals (the hub's presence, the data channels,
 * ICE, a timeout) reports it first.
 */
import type { PeerInfo } from "./signaling.js";

/** Tracks present peers and the ids that left (their late signals are ignored). */
export class Membership {
  private readonly present = new Map<string, PeerInfo>();
  private readonly gone = new Set<string>();

  /** Records a peer; `false` if it is already present or has left before (no second join). */
  join(peer: PeerInfo): boolean {
    if (this.present.has(peer.id) || this.gone.has(peer.id)) return false;
    this.present.set(peer.id, peer);
    return true;
  }

  /** Removes a peer; returns it the first time, `null` after (no second leave). */
  leave(id: string): PeerInfo | null {
    const peer = this.present.get(id);
    if (peer === undefined) return null;
    this.present.delete(id);
    this.gone.add(id);
    return peer;
  }

  /** The peer, if present. */
  get(id: string): PeerInfo | undefined {
    return this.present.get(id);
  }

  /** Present peers, in join order. */
  peers(): PeerInfo[] {
    return [...this.present.values()];
  }

  /** Removes everyone and returns who was present. */
  clear(): PeerInfo[] {
    const all = this.peers();
    for (const peer of all) this.leave(peer.id);
    return all;
  }
}
