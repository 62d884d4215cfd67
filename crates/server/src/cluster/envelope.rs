//! What nodes of a cluster tell each other: batches of records on one node's pub/sub channel,
//! written in MessagePack. Pure: bytes in, records out, and back.
//!
//! A record is either for a room's owner (a join, a peer's frames, its leave) or for the node
//! of a peer's connection (the answer to a join, frames to queue, a close). Frames travel as the
//! bytes the client sent and as the bytes the client gets, so no message is decoded or encoded
//! twice on its way through the cluster.

use std::net::IpAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_protocol::{ErrorCode, LeaveReason, PeerId, ProtocolError};

use crate::hub::{CloseReason, Destination, Permits, RoomSnapshot, Seat};

/// A node's identity: random, drawn when the node starts.
pub type NodeId = u64;

/// The records one node sends another in one pub/sub message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The sending node.
    pub from: NodeId,
    /// Its records, in order.
    pub records: Vec<Record>,
}

/// One thing a node tells another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// To a room's owner: a peer connected to the sender asks to join or resume.
    Join {
        /// Numbers the question; the answer carries it back.
        ask: u64,
        /// Who asks.
        member: Member,
        /// Where to, with what the hub needs.
        entry: Entering,
    },
    /// To the node of the asking connection: the owner's answer to `Join`.
    Joined {
        /// The question's number.
        ask: u64,
        /// The asking connection.
        conn: u64,
        /// The peer's seat and whether it resumed, or why it may not enter.
        result: Result<(Seat, bool), Refused>,
    },
    /// To the node of the asking connection: the answer to `Join` from a node that does not own
    /// the room (any more): ask the store again.
    NotOwner {
        /// The question's number.
        ask: u64,
    },
    /// To a room's owner: data frames a peer sent, as it sent them, in order.
    Frames {
        /// The peer.
        peer: PeerId,
        /// Its connection.
        conn: u64,
        /// The frames.
        frames: Vec<WireFrame>,
    },
    /// To a room's owner: a peer's connection ended.
    Leave {
        /// The peer.
        peer: PeerId,
        /// Its connection.
        conn: u64,
        /// What the room hears.
        reason: LeaveReason,
        /// A lost connection (the peer may resume), not a goodbye.
        may_suspend: bool,
    },
    /// To the node of the recipients' connections: one encoded frame for each of them.
    Deliver {
        /// The recipients, all connected to the receiving node and speaking the same wire.
        to: Vec<PeerId>,
        /// The frame, encoded for their wire.
        frame: WireFrame,
    },
    /// To the nodes of a room's members: the sender took the room over from its owner, which is
    /// gone; these connections' frames go to the sender from now on.
    Moved {
        /// The room.
        room: String,
        /// The members connected to the receiving node, with their connections.
        peers: Vec<(PeerId, u64)>,
    },
    /// To a node the sender chose: the sender is draining and hands it this room (already its
    /// owner in the store).
    Handover {
        /// The room as the sender held it.
        room: StoredRoom,
    },
    /// To every other node: an operator's call on the sender's admin API (rooms are on their
    /// owners).
    Admin {
        /// Numbers the question.
        ask: u64,
        /// What to do.
        action: AdminAction,
    },
    /// The answer to `Admin`.
    AdminAnswered {
        /// The question's number.
        ask: u64,
        /// What this node has or did.
        answer: AdminAnswer,
    },
    /// To the node of a peer's connection: close it.
    Close {
        /// The peer.
        peer: PeerId,
        /// Its connection.
        conn: u64,
        /// Why.
        reason: Closing,
    },
}

/// A peer connected to one node, as its room's owner knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The peer's id (drawn by the node of its connection).
    pub id: PeerId,
    /// Its connection's number (cluster-wide unique: each node starts at a random number).
    pub conn: u64,
    /// What the connection speaks ([`crate::wire::Wire::slot`]).
    pub wire: u8,
    /// The user name it asked for (validated).
    pub name: Option<String>,
    /// `ws(s)://host` as the client reached the server.
    pub origin: String,
    /// Where it connects from.
    pub ip: IpAddr,
}

/// A join, resume or claim as the owner's hub takes it (ids and tokens drawn by the asker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Entering {
    /// A fresh join.
    Join {
        /// Where to.
        destination: Destination,
        /// The resume token, when the peer asked to be resumable.
        token: Option<u128>,
        /// Random bits for a generated room name.
        entropy: u128,
        /// What the peer's token allows.
        permits: Permits,
    },
    /// Taking back a place with a resume token.
    Resume {
        /// The token.
        token: u128,
        /// The next one.
        next_token: u128,
        /// With auth: the user the new connection's token names.
        token_name: Option<String>,
        /// What the new connection's token allows.
        permits: Permits,
    },
    /// The place a token holds if there is one, else a join with it as the resume token.
    Claim {
        /// The token.
        token: u128,
        /// Where to join when it holds no place.
        destination: Destination,
        /// Random bits for a generated room name.
        entropy: u128,
        /// With auth: the user the connection's token names.
        token_name: Option<String>,
        /// What the connection's token allows.
        permits: Permits,
    },
}

/// Why a peer may not enter, or why a connection closes: an error as the client gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// Its code.
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
}

impl From<ProtocolError> for Refused {
    fn from(error: ProtocolError) -> Self {
        Self {
            code: error.code,
            message: error.message,
        }
    }
}

impl From<Refused> for ProtocolError {
    fn from(refused: Refused) -> Self {
        ProtocolError::new(refused.code, refused.message)
    }
}

/// Why the owner closes a peer's connection (what the hub decides; WebSocket violations are the
/// connection's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Closing {
    /// With an `error` and its close code.
    Error(Refused),
    /// Normally: the peer detached.
    Detached,
}

impl Closing {
    /// The hub's reason as a record can carry it; `None` for a WebSocket violation, which only
    /// the connection itself decides.
    pub fn from_reason(reason: CloseReason) -> Option<Self> {
        match reason {
            CloseReason::Error(error) => Some(Self::Error(error.into())),
            CloseReason::Detached => Some(Self::Detached),
            CloseReason::Violation { .. } => None,
        }
    }

    /// The reason the connection closes for.
    pub fn into_reason(self) -> CloseReason {
        match self {
            Self::Error(refused) => CloseReason::Error(refused.into()),
            Self::Detached => CloseReason::Detached,
        }
    }
}

/// A room as stored: the hub's snapshot and where each member's connection is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRoom {
    /// The hub's view.
    pub room: RoomSnapshot,
    /// Each connected member's node and connection.
    pub links: Vec<StoredLink>,
}

/// Where one member's connection is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLink {
    /// The member.
    pub id: PeerId,
    /// The node of its connection.
    pub node: NodeId,
    /// The connection.
    pub conn: u64,
    /// What it speaks ([`crate::wire::Wire::slot`]).
    pub wire: u8,
    /// `ws(s)://host` as it reached the server (empty when its node did not keep it).
    pub origin: String,
}

/// An admin API call carried to the other nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminAction {
    /// Every room the node owns.
    List,
    /// Remove a peer, if it is in a room the node owns.
    Kick {
        /// The peer.
        peer: PeerId,
        /// The operator's reason.
        reason: String,
    },
    /// Close a room, if the node owns it.
    Close {
        /// The room.
        room: String,
    },
}

/// A node's answer to an admin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminAnswer {
    /// Its rooms, each as the admin API shows it (JSON).
    Rooms(Vec<String>),
    /// Whether it had the peer or room (and acted).
    Done(bool),
}

/// A WebSocket data frame's kind and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFrame {
    /// A text frame (else binary).
    pub text: bool,
    /// Its payload.
    pub bytes: Bytes,
}

impl Record {
    /// A connection's leave, for its room's owner.
    pub fn leave(peer: PeerId, conn: u64, reason: LeaveReason, may_suspend: bool) -> Self {
        Record::Leave {
            peer,
            conn,
            reason,
            may_suspend,
        }
    }

    /// About how many bytes the record holds: its frames, plus a fixed share for the rest (what
    /// the queue of records for other nodes is bounded by).
    pub fn weight(&self) -> usize {
        const BASE: usize = 64;
        BASE + match self {
            Record::Frames { frames, .. } => frames.iter().map(|f| f.bytes.len()).sum(),
            Record::Deliver { to, frame } => frame.bytes.len() + 16 * to.len(),
            Record::Handover { room } => 128 * (room.room.members.len() + 1),
            Record::Moved { peers, .. } => 24 * peers.len(),
            _ => 0,
        }
    }
}

/// Why bytes from the channel are not a batch.
#[derive(Debug, thiserror::Error)]
#[error("not a cluster batch: {0}")]
pub struct BadBatch(String);

impl Batch {
    /// The batch as one pub/sub message.
    pub fn encode(&self) -> Vec<u8> {
        // Fields by name: protocol types skip empty fields, which a positional array would not
        // survive. Every field is a plain value: writing to a Vec cannot fail.
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    /// A batch read back from one pub/sub message.
    pub fn decode(bytes: &[u8]) -> Result<Self, BadBatch> {
        rmp_serde::from_slice(bytes).map_err(|e| BadBatch(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RoomOptions;
    use switchboard_protocol::{HostLeaves, Payload, PeerInfo, RoomInfo, RoomKind, Topology};

    fn id(n: u128) -> PeerId {
        PeerId::from_u128(n)
    }

    fn member() -> Member {
        Member {
            id: id(u128::MAX - 7),
            conn: u64::MAX - 1,
            wire: 1,
            name: Some("ada".into()),
            origin: "ws://127.0.0.1:1".into(),
            ip: "::1".parse().unwrap(),
        }
    }

    #[test]
    fn every_record_survives_the_channel() {
        let meta = Payload::from_json(r#"{"mode":"duel","n":[1,2.5,null]}"#).unwrap();
        let options = RoomOptions {
            public: true,
            capacity: Some(4),
            meta: Some(meta.clone()),
            ..RoomOptions::default()
        };
        let seat = Seat {
            id: id(9),
            room: "lobby".into(),
            name: None,
            peers: vec![PeerInfo {
                id: id(10),
                name: Some("bo".into()),
                resumable: true,
            }],
            info: RoomInfo {
                kind: RoomKind::Code,
                topology: Topology::Star,
                capacity: 4,
                host: None,
                host_leaves: HostLeaves::Close,
                public: false,
                meta: Some(meta.clone()),
                started: false,
            },
            token: Some(u128::MAX),
        };
        let batch = Batch {
            from: 42,
            records: vec![
                Record::Join {
                    ask: 1,
                    member: member(),
                    entry: Entering::Join {
                        destination: Destination::Named {
                            room: "lobby".into(),
                            create: true,
                            options,
                        },
                        token: Some(u128::MAX - 1),
                        entropy: 3,
                        permits: Permits::default(),
                    },
                },
                Record::Joined {
                    ask: 1,
                    conn: 7,
                    result: Ok((seat, true)),
                },
                Record::NotOwner { ask: 3 },
                Record::Joined {
                    ask: 2,
                    conn: 8,
                    result: Err(ProtocolError::new(ErrorCode::RoomFull, "full").into()),
                },
                Record::Frames {
                    peer: id(1),
                    conn: 2,
                    frames: vec![
                        WireFrame {
                            text: true,
                            bytes: Bytes::from_static(b"{\"type\":\"ping\"}"),
                        },
                        WireFrame {
                            text: false,
                            bytes: Bytes::from(vec![0u8, 255, 128]),
                        },
                    ],
                },
                Record::Leave {
                    peer: id(1),
                    conn: 2,
                    reason: LeaveReason::Timeout,
                    may_suspend: true,
                },
                Record::Deliver {
                    to: vec![id(1), id(u128::MAX)],
                    frame: WireFrame {
                        text: true,
                        bytes: Bytes::from_static(b"x"),
                    },
                },
                Record::Close {
                    peer: id(1),
                    conn: 2,
                    reason: Closing::Detached,
                },
                Record::Moved {
                    room: "lobby".into(),
                    peers: vec![(id(3), 4)],
                },
                Record::Admin {
                    ask: 5,
                    action: AdminAction::Kick {
                        peer: id(1),
                        reason: "spam".into(),
                    },
                },
                Record::AdminAnswered {
                    ask: 5,
                    answer: AdminAnswer::Rooms(vec!["{}".into()]),
                },
            ],
        };
        let back = Batch::decode(&batch.encode()).unwrap();
        assert_eq!(back, batch);
        // Frames go as MessagePack `bin`, not as arrays of numbers.
        let frame = Batch {
            from: 1,
            records: vec![Record::Deliver {
                to: vec![],
                frame: WireFrame {
                    text: false,
                    bytes: Bytes::from(vec![7u8; 1000]),
                },
            }],
        };
        assert!(frame.encode().len() < 1100);
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\xff\xff",
            b"\x92\x01",
            b"{\"from\":1}",
            &[0x91; 64],
        ] {
            assert!(Batch::decode(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn only_the_hubs_reasons_travel() {
        let violation = CloseReason::Violation {
            code: 1002,
            reason: "x",
        };
        assert_eq!(Closing::from_reason(violation), None);
        let error = CloseReason::Error(ProtocolError::new(ErrorCode::Kicked, "out"));
        let closing = Closing::from_reason(error.clone()).unwrap();
        assert_eq!(closing.into_reason(), error);
    }
}
