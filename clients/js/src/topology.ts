/**
 * Who connects to whom, as pure functions of the room's topology and host. Mesh: everyone to
 * everyone. Star: the host to every client, and clients only to the host.
 */
import type { RoomInfo } from "./signaling.js";
import type { Role } from "./negotiation.js";

/** Whether `me` should have a WebRTC connection to `peer`. */
export function shouldLink(me: string, peer: string, info: Pick<RoomInfo, "topology" | "host">): boolean {
  if (me === peer) return false;
  return info.topology === "mesh" || info.host === me || info.host === peer;
}

/**
 * Who offers on a new connection. Normally the peer already in the room offers to the newcomer;
 * a peer that resumed offers to everyone (they do not know it came back); a new host offers to
 * its clients.
 */
export function roleFor(event: "present-at-welcome" | "joined-later" | "new-host-me" | "new-host-them", resumed: boolean): Role {
  switch (event) {
    case "present-at-welcome":
      return resumed ? "offerer" : "answerer";
    case "joined-later":
    case "new-host-me":
      return "offerer";
    case "new-host-them":
      return "answerer";
  }
}
