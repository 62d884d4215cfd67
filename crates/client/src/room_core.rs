//! The room's decisions, as a pure state machine: membership, who to connect to and in which
//! role, what a server message or a connection's end means. Input: server messages and link
//! outcomes; output: [`Action`]s for the shell (which owns the sockets and the WebRTC stack).

use serde_json::Value;
use switchboard_protocol::{
    ClientMessage, ErrorCode, PeerId, PeerInfo, ProtocolError, RoomInfo, ServerMessage, Welcome,
};

use crate::event::Event;
use crate::signal::{Role, Signal};
use crate::topology::{role_for, should_link, Reason};
use crate::Error;

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Report this to the application.
    Emit(Event),
    /// Start a WebRTC connection to this peer in this role (the offerer sends its offer).
    Link(PeerId, Role),
    /// Drop the connection to this peer, if any.
    Unlink(PeerId),
    /// Give this signal to the connection to this peer.
    Signal(PeerId, Signal),
    /// Send this to the hub.
    Transmit(ClientMessage),
    /// The room is over: close everything (an `Emit(Closed)` precedes it).
    Shutdown,
}

/// The first frame of a join as it decoded: the `welcome`, or why the join failed (an `error`
/// first is the server's refusal, with its code).
pub fn welcome_of(decoded: Result<ServerMessage, ProtocolError>) -> Result<Box<Welcome>, Error> {
    match decoded {
        Ok(ServerMessage::Welcome(welcome)) => Ok(welcome),
        Ok(ServerMessage::Error { code, message }) => Err(Error::new(code.as_str(), message)),
        Ok(other) => Err(Error::new(
            "bad_server_message",
            format!("expected welcome, got {other:?}"),
        )),
        Err(error) => Err(Error::new("bad_server_message", error.to_string())),
    }
}

/// The state of a joined room.
#[derive(Debug)]
pub struct RoomCore {
    me: PeerId,
    resumed: bool,
    info: RoomInfo,
    /// Other peers present, oldest first.
    members: Vec<PeerInfo>,
    /// Peers with a connection (being made or open).
    linked: Vec<PeerId>,
    /// Peers whose channels are all open.
    connected: Vec<PeerId>,
    closed: bool,
}

impl RoomCore {
    /// The room as the `welcome` describes it; [`RoomCore::begin`] admits its peers.
    pub fn new(welcome: &Welcome) -> Self {
        Self {
            me: welcome.id,
            resumed: welcome.resumed,
            info: welcome.room_info.clone(),
            members: Vec::new(),
            linked: Vec::new(),
            connected: Vec::new(),
            closed: false,
        }
    }

    /// The room's settings and state.
    pub fn info(&self) -> &RoomInfo {
        &self.info
    }

    /// The other peers present, oldest first, with whether each is connected.
    pub fn peers(&self) -> impl Iterator<Item = (&PeerInfo, bool)> {
        self.members
            .iter()
            .map(|p| (p, self.connected.contains(&p.id)))
    }

    /// Whether `peer` is a member, and whether it is connected.
    pub fn member(&self, peer: PeerId) -> Option<bool> {
        self.members
            .iter()
            .any(|p| p.id == peer)
            .then(|| self.connected.contains(&peer))
    }

    /// Admits the peers of the `welcome`.
    pub fn begin(&mut self, welcome: &Welcome) -> Vec<Action> {
        let mut actions = Vec::new();
        let reason = Reason::PresentAtWelcome {
            resumed: self.resumed,
        };
        for peer in &welcome.peers {
            self.admit(peer.clone(), reason, &mut actions);
        }
        actions
    }

    /// A message from the hub.
    pub fn server(&mut self, message: ServerMessage) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.closed {
            return actions;
        }
        match message {
            ServerMessage::PeerJoined(peer) if peer.id != self.me => {
                self.admit(peer, Reason::JoinedLater, &mut actions);
            }
            ServerMessage::PeerLeft { id, reason } => {
                let reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "closed".into());
                self.depart(id, reason, &mut actions);
            }
            ServerMessage::Signal { from, data } => self.signal(from, &data, &mut actions),
            ServerMessage::HostChanged { host } => self.host_changed(host, &mut actions),
            ServerMessage::RoomStarted => {
                self.info.started = true;
                actions.push(Action::Emit(Event::Started));
            }
            ServerMessage::RoomUpdated { meta } => {
                self.info.meta = Some(meta.clone());
                actions.push(Action::Emit(Event::MetaChanged(meta)));
            }
            ServerMessage::Error { code, message } => {
                let code = code.as_str();
                actions.push(Action::Emit(Event::Error {
                    error: Error::new(code, message),
                    peer: None,
                }));
            }
            ServerMessage::Welcome(_) => actions.push(Action::Emit(Event::Error {
                error: Error::new("bad_server_message", "a second welcome"),
                peer: None,
            })),
            // Hub-relayed messages, pongs, ICE server updates (the shell handles those) and our
            // own join: nothing to decide.
            _ => {}
        }
        actions
    }

    /// A frame from the hub as it decoded: types a later server may add are skipped
    /// (docs/protocol.md, "Versioning"); an undecodable frame is reported and the room goes on;
    /// an `error` that closes the socket waits for the close frame, which ends the room.
    pub fn server_frame(&mut self, decoded: Result<ServerMessage, ProtocolError>) -> Vec<Action> {
        match decoded {
            Err(error) if error.code == ErrorCode::UnknownType => Vec::new(),
            Err(error) => vec![Action::Emit(Event::Error {
                error: Error::new("bad_server_message", error.to_string()),
                peer: None,
            })],
            Ok(ServerMessage::Error { code, .. }) if code.close_code().is_some() => Vec::new(),
            Ok(message) => self.server(message),
        }
    }

    /// The hub closed the signaling socket (WebSocket close `code` and `reason`; 1006 when it
    /// dropped): on purpose after `detach` the room goes on over the peer connections, else it
    /// is over, with the server's reason as the code.
    pub fn signaling_closed(&mut self, code: u16, reason: &str) -> Vec<Action> {
        if code == 1000 && reason == "detached" {
            return Vec::new();
        }
        let error = if reason.is_empty() || code == 1006 {
            "connection_closed"
        } else {
            reason
        };
        self.shutdown(
            error,
            &format!("the server closed the connection ({code} {reason})"),
        )
    }

    /// The signaling moved to another server node (the old one drained) and `welcome` is the
    /// new socket's: a resume of this place keeps the room going, and what happened while no
    /// socket listened is caught up (peers gone meanwhile leave, peers that came meanwhile are
    /// linked as if they had just joined, the room's state is the welcome's). Anything else ends
    /// the room with `resume_failed`.
    pub fn moved(&mut self, welcome: &Welcome) -> Vec<Action> {
        if welcome.id != self.me || !welcome.resumed {
            return self.shutdown(
                "resume_failed",
                "the room could not be resumed on another server node",
            );
        }
        let mut actions = Vec::new();
        // The room's state is the welcome's from now on, but the host: a new host is taken
        // below as a `host_changed`, after the peers are caught up, so that a new host links to
        // every client, newcomers included.
        let was = std::mem::replace(&mut self.info, welcome.room_info.clone());
        self.info.host = was.host;
        let gone: Vec<PeerId> = self
            .members
            .iter()
            .map(|p| p.id)
            .filter(|id| !welcome.peers.iter().any(|p| p.id == *id))
            .collect();
        for peer in gone {
            self.depart(peer, "closed".into(), &mut actions);
        }
        for peer in &welcome.peers {
            self.admit(peer.clone(), Reason::JoinedLater, &mut actions);
        }
        match welcome.room_info.host {
            Some(host) if was.host != Some(host) => self.host_changed(host, &mut actions),
            host => self.info.host = host,
        }
        if self.info.started && !was.started {
            actions.push(Action::Emit(Event::Started));
        }
        if let Some(meta) = self
            .info
            .meta
            .clone()
            .filter(|meta| was.meta.as_ref() != Some(meta))
        {
            actions.push(Action::Emit(Event::MetaChanged(meta)));
        }
        actions
    }

    /// Every channel to `peer` is open.
    pub fn link_open(&mut self, peer: PeerId) -> Vec<Action> {
        let Some(info) = self.members.iter().find(|p| p.id == peer).cloned() else {
            return vec![Action::Unlink(peer)];
        };
        if !self.connected.contains(&peer) {
            self.connected.push(peer);
        }
        vec![Action::Emit(Event::PeerConnected(info))]
    }

    /// The connection to `peer` ended (`reason` from the connection). A resumable peer may come
    /// back: it is only reported disconnected. The hub is told, for detached peers.
    pub fn link_closed(&mut self, peer: PeerId, reason: String) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.linked.contains(&peer) {
            return actions;
        }
        self.linked.retain(|p| *p != peer);
        self.connected.retain(|p| *p != peer);
        actions.push(Action::Transmit(ClientMessage::Gone { peer }));
        match self.members.iter().find(|p| p.id == peer) {
            Some(info) if info.resumable => {
                actions.push(Action::Emit(Event::PeerDisconnected(info.clone())));
            }
            _ => self.depart(peer, reason, &mut actions),
        }
        actions
    }

    /// The room is over for us (closed by the application, the server, or a timeout).
    pub fn shutdown(&mut self, code: &str, reason: &str) -> Vec<Action> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        self.members.clear();
        self.linked.clear();
        self.connected.clear();
        vec![
            Action::Emit(Event::Closed {
                code: code.to_owned(),
                reason: reason.to_owned(),
            }),
            Action::Shutdown,
        ]
    }

    fn admit(&mut self, peer: PeerInfo, reason: Reason, actions: &mut Vec<Action>) {
        if peer.id == self.me || self.members.iter().any(|p| p.id == peer.id) {
            return;
        }
        let id = peer.id;
        self.members.push(peer.clone());
        actions.push(Action::Emit(Event::PeerJoined(peer)));
        if should_link(self.me, id, &self.info) {
            self.link(id, role_for(reason), actions);
        }
    }

    fn link(&mut self, peer: PeerId, role: Role, actions: &mut Vec<Action>) {
        if !self.linked.contains(&peer) {
            self.linked.push(peer);
        }
        actions.push(Action::Link(peer, role));
    }

    fn signal(
        &mut self,
        from: PeerId,
        data: &switchboard_protocol::Payload,
        actions: &mut Vec<Action>,
    ) {
        let Some(resumable) = self
            .members
            .iter()
            .find(|p| p.id == from)
            .map(|p| p.resumable)
        else {
            return;
        };
        let parsed = data
            .to_json_string()
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .ok_or_else(|| Error::new("bad_signal", "signal is not JSON"))
            .and_then(|value| Signal::parse(&value));
        let signal = match parsed {
            Ok(signal) => signal,
            Err(error) => {
                actions.push(Action::Emit(Event::Error {
                    error,
                    peer: Some(from),
                }));
                return;
            }
        };
        let linked = self.linked.contains(&from);
        // A resumed peer (or a new host) offers again: a fresh connection replaces the old one.
        if matches!(signal, Signal::Offer { .. })
            && (!linked || resumable)
            && should_link(self.me, from, &self.info)
        {
            if linked {
                actions.push(Action::Unlink(from));
                self.connected.retain(|p| *p != from);
            }
            self.link(from, Role::Answerer, actions);
        }
        if self.linked.contains(&from) {
            actions.push(Action::Signal(from, signal));
        }
    }

    fn host_changed(&mut self, host: PeerId, actions: &mut Vec<Action>) {
        self.info.host = Some(host);
        actions.push(Action::Emit(Event::HostChanged(host)));
        if self.info.topology != switchboard_protocol::Topology::Star || host != self.me {
            return;
        }
        // The new host connects to every client; clients wait for its offer.
        let clients: Vec<PeerId> = self
            .members
            .iter()
            .map(|p| p.id)
            .filter(|id| !self.linked.contains(id))
            .collect();
        for peer in clients {
            self.link(peer, role_for(Reason::NewHostMe), actions);
        }
    }

    fn depart(&mut self, peer: PeerId, reason: String, actions: &mut Vec<Action>) {
        if self.linked.contains(&peer) {
            self.linked.retain(|p| *p != peer);
            self.connected.retain(|p| *p != peer);
            actions.push(Action::Unlink(peer));
        }
        if let Some(index) = self.members.iter().position(|p| p.id == peer) {
            let info = self.members.remove(index);
            actions.push(Action::Emit(Event::PeerLeft { peer: info, reason }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{HostLeaves, LeaveReason, RoomKind, Topology};

    fn id(n: u128) -> PeerId {
        PeerId::from_u128(n)
    }

    fn peer(n: u128, resumable: bool) -> PeerInfo {
        PeerInfo {
            id: id(n),
            name: None,
            resumable,
        }
    }

    fn welcome(peers: Vec<PeerInfo>, topology: Topology, host: u128) -> Welcome {
        Welcome {
            version: 1,
            id: id(1),
            room: "r".into(),
            name: None,
            peers,
            ice_servers: Vec::new(),
            heartbeat_ms: 5000,
            idle_timeout_ms: 15000,
            max_message_bytes: 65536,
            resume_grace_ms: 10000,
            detached_ttl_ms: 3_600_000,
            room_info: RoomInfo {
                kind: RoomKind::Named,
                topology,
                capacity: 8,
                host: Some(id(host)),
                host_leaves: HostLeaves::Migrate,
                public: false,
                meta: None,
                started: false,
            },
            resume_token: None,
            resumed: false,
        }
    }

    fn links(actions: &[Action]) -> Vec<(PeerId, Role)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Link(p, r) => Some((*p, *r)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn peers_present_offer_to_us_and_we_offer_to_newcomers() {
        let w = welcome(vec![peer(2, false)], Topology::Mesh, 2);
        let mut core = RoomCore::new(&w);
        assert_eq!(links(&core.begin(&w)), vec![(id(2), Role::Answerer)]);
        let later = core.server(ServerMessage::PeerJoined(peer(3, false)));
        assert_eq!(links(&later), vec![(id(3), Role::Offerer)]);
        // Our own join, echoed, is nothing.
        assert!(core
            .server(ServerMessage::PeerJoined(peer(1, false)))
            .is_empty());
        assert_eq!(core.member(id(3)), Some(false));
        assert!(matches!(
            core.link_open(id(3)).as_slice(),
            [Action::Emit(Event::PeerConnected(_))]
        ));
        assert_eq!(core.member(id(3)), Some(true));
    }

    #[test]
    fn in_a_star_clients_link_only_to_the_host() {
        let w = welcome(vec![peer(2, false), peer(3, false)], Topology::Star, 2);
        let mut core = RoomCore::new(&w);
        assert_eq!(links(&core.begin(&w)), vec![(id(2), Role::Answerer)]);
        // The host leaves and we become host: we offer to the remaining client.
        let left = core.server(ServerMessage::PeerLeft {
            id: id(2),
            reason: LeaveReason::Closed,
        });
        assert!(left.contains(&Action::Unlink(id(2))));
        let promoted = core.server(ServerMessage::HostChanged { host: id(1) });
        assert_eq!(links(&promoted), vec![(id(3), Role::Offerer)]);
    }

    #[test]
    fn a_resumable_peers_lost_connection_is_not_a_leave_and_its_new_offer_replaces_it() {
        let w = welcome(vec![peer(2, true)], Topology::Mesh, 2);
        let mut core = RoomCore::new(&w);
        core.begin(&w);
        let closed = core.link_closed(id(2), "disconnected".into());
        assert!(closed.contains(&Action::Transmit(ClientMessage::Gone { peer: id(2) })));
        assert!(matches!(
            closed.last(),
            Some(Action::Emit(Event::PeerDisconnected(_)))
        ));
        assert_eq!(core.member(id(2)), Some(false));
        let offer = Signal::Offer {
            sdp: "v=0".into(),
            channels: "x".into(),
        };
        let data =
            switchboard_protocol::Payload::from_json(&offer.to_value().to_string()).expect("json");
        let again = core.server(ServerMessage::Signal { from: id(2), data });
        assert_eq!(links(&again), vec![(id(2), Role::Answerer)]);
        assert!(matches!(
            again.last(),
            Some(Action::Signal(_, Signal::Offer { .. }))
        ));
        // A plain peer's lost connection is its leave.
        let later = core.server(ServerMessage::PeerJoined(peer(3, false)));
        assert_eq!(links(&later).len(), 1);
        let gone = core.link_closed(id(3), "connection_failed".into());
        assert!(gone.iter().any(|a| matches!(a, Action::Emit(Event::PeerLeft { reason, .. }) if reason == "connection_failed")));
    }

    #[test]
    fn bad_signals_are_reported_and_strangers_ignored() {
        let w = welcome(vec![peer(2, false)], Topology::Mesh, 2);
        let mut core = RoomCore::new(&w);
        core.begin(&w);
        let junk = switchboard_protocol::Payload::from_json(r#"{"type":"nope"}"#).expect("json");
        let reported = core.server(ServerMessage::Signal {
            from: id(2),
            data: junk.clone(),
        });
        assert!(
            matches!(reported.as_slice(), [Action::Emit(Event::Error { error, .. })] if error.code == "bad_signal")
        );
        assert!(core
            .server(ServerMessage::Signal {
                from: id(9),
                data: junk
            })
            .is_empty());
        let closed = core.shutdown("room_closed", "bye");
        assert_eq!(closed.last(), Some(&Action::Shutdown));
        assert!(core.shutdown("room_closed", "again").is_empty());
    }

    #[test]
    fn server_frames_skip_new_types_report_garbage_and_leave_closing_errors_to_the_close() {
        use switchboard_protocol::{decode_server, Encoding, Frame};
        let mut core = RoomCore::new(&welcome(vec![], Topology::Mesh, 1));
        let decode = |text: &str| decode_server(Frame::Text(text.as_bytes()), Encoding::Json);
        // A type a later server may add.
        assert_eq!(core.server_frame(decode(r#"{"type":"future"}"#)), vec![]);
        let garbage = core.server_frame(decode("not json"));
        assert!(matches!(
            garbage.as_slice(),
            [Action::Emit(Event::Error { error, peer: None })] if error.code == "bad_server_message"
        ));
        // An error that closes the socket: the close frame ends the room, not the error.
        let kicked = decode(r#"{"type":"error","code":"kicked","message":"bye"}"#);
        assert_eq!(core.server_frame(kicked), vec![]);
        let refused = decode(r#"{"type":"error","code":"rate_limited","message":"slow down"}"#);
        assert!(matches!(
            core.server_frame(refused).as_slice(),
            [Action::Emit(Event::Error { error, .. })] if error.code == "rate_limited"
        ));
    }

    #[test]
    fn a_detached_close_keeps_the_room_and_any_other_close_ends_it_with_the_reason() {
        let mut core = RoomCore::new(&welcome(vec![], Topology::Mesh, 1));
        assert_eq!(core.signaling_closed(1000, "detached"), vec![]);
        let ended = core.signaling_closed(4000, "kicked");
        assert!(matches!(
            ended.as_slice(),
            [Action::Emit(Event::Closed { code, .. }), Action::Shutdown] if code == "kicked"
        ));
        let mut dropped = RoomCore::new(&welcome(vec![], Topology::Mesh, 1));
        assert!(matches!(
            dropped.signaling_closed(1006, "").first(),
            Some(Action::Emit(Event::Closed { code, .. })) if code == "connection_closed"
        ));
    }

    #[test]
    fn a_move_to_another_node_catches_up_on_what_happened_meanwhile_or_ends_the_room() {
        let w = welcome(vec![peer(2, true), peer(3, true)], Topology::Mesh, 2);
        let mut core = RoomCore::new(&w);
        core.begin(&w);
        // Meanwhile 3 left, 4 joined, and the host moved to 4.
        let mut moved = welcome(vec![peer(2, true), peer(4, true)], Topology::Mesh, 4);
        moved.resumed = true;
        let actions = core.moved(&moved);
        assert!(actions.iter().any(|a| matches!(a,
            Action::Emit(Event::PeerLeft { peer, reason }) if peer.id == id(3) && reason == "closed")));
        assert_eq!(links(&actions), vec![(id(4), Role::Offerer)]);
        assert!(actions.contains(&Action::Emit(Event::HostChanged(id(4)))));
        assert_eq!(
            core.member(id(2)),
            Some(false),
            "2 stays, its connection untouched"
        );
        assert!(!actions
            .iter()
            .any(|a| matches!(a, Action::Unlink(p) if *p == id(2))));
        assert_eq!(core.info().host, Some(id(4)));
        // A welcome that is not a resume of this place ends the room.
        let mut other = moved.clone();
        other.resumed = false;
        assert!(matches!(
            core.moved(&other).as_slice(),
            [Action::Emit(Event::Closed { code, .. }), .., Action::Shutdown] if code == "resume_failed"
        ));
    }

    #[test]
    fn a_move_that_made_us_host_of_a_star_links_every_client_and_reports_the_rooms_news() {
        let w = welcome(vec![peer(2, true), peer(3, true)], Topology::Star, 2);
        let mut core = RoomCore::new(&w);
        assert_eq!(links(&core.begin(&w)), vec![(id(2), Role::Answerer)]);
        // Meanwhile the host (2) left, we became host, 4 joined, the room started, meta changed.
        let mut moved = welcome(vec![peer(3, true), peer(4, true)], Topology::Star, 1);
        moved.resumed = true;
        moved.room_info.started = true;
        moved.room_info.meta =
            Some(switchboard_protocol::Payload::from_json(r#"{"round":2}"#).unwrap());
        let actions = core.moved(&moved);
        assert!(actions.contains(&Action::Unlink(id(2))));
        let mut linked = links(&actions);
        linked.sort_by_key(|(peer, _)| *peer);
        assert_eq!(
            linked,
            vec![(id(3), Role::Offerer), (id(4), Role::Offerer)],
            "the new host offers to every client, the one it knew and the newcomer"
        );
        assert!(actions.contains(&Action::Emit(Event::HostChanged(id(1)))));
        assert!(actions.contains(&Action::Emit(Event::Started)));
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::Emit(Event::MetaChanged(_)))));
        assert_eq!(core.info().host, Some(id(1)));
        // The same state again reports nothing new.
        let again = core.moved(&moved);
        assert!(!again.iter().any(|a| matches!(
            a,
            Action::Emit(Event::HostChanged(_) | Event::Started | Event::MetaChanged(_))
        )));
    }

    #[test]
    fn the_first_frame_is_a_welcome_or_the_reason_the_join_failed() {
        use switchboard_protocol::{decode_server, Encoding, Frame};
        let decode = |text: &str| decode_server(Frame::Text(text.as_bytes()), Encoding::Json);
        let full = welcome_of(decode(
            r#"{"type":"error","code":"room_full","message":"full"}"#,
        ));
        assert_eq!(full.unwrap_err().code, "room_full");
        let pong = welcome_of(decode(r#"{"type":"pong"}"#));
        assert_eq!(pong.unwrap_err().code, "bad_server_message");
        assert_eq!(
            welcome_of(decode("{")).unwrap_err().code,
            "bad_server_message"
        );
    }
}
