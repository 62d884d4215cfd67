//! The peer table without a network: a native client `Rtc` and the table exchange datagrams in
//! memory, and time only moves when the test moves it. What the handshake costs here is what the
//! protocols' timers cost, with no CPU or socket in the way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};
use switchboard_protocol::PeerId;
use tokio::sync::oneshot;

use super::table::{PeerTable, Place};
use super::Command;
use crate::api::{Channel, Data, Event, EventQueue};
use crate::channels::{channel_config, CHANNELS};
use crate::config::PeerConfig;
use crate::roster::Roster;
use crate::stats::Stats;

const SERVER: &str = "127.0.0.1:5000";

/// A browser-like client: full ICE, the two pre-negotiated channels.
struct Client {
    rtc: Rtc,
    addr: SocketAddr,
    reliable: ChannelId,
    unreliable: ChannelId,
    events: Vec<RtcEvent>,
    /// Its next timeout.
    deadline: Instant,
}

impl Client {
    /// Takes the client's outputs up to its next timeout: datagrams for the server (into `out`),
    /// events (kept). Returns the timeout.
    fn drain(&mut self, out: &mut Vec<(SocketAddr, Vec<u8>)>) -> Instant {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(at) => return at,
                Output::Transmit(t) => {
                    assert_eq!(t.destination, SERVER.parse::<SocketAddr>().unwrap());
                    out.push((self.addr, t.contents.into()));
                }
                Output::Event(event) => self.events.push(event),
            }
        }
    }
}

/// The shards' tables with the roster they share, the kernel's choice of shard for each client
/// address, a clock the test moves, and clients.
struct World {
    tables: Vec<PeerTable>,
    roster: Arc<Roster>,
    /// The shard whose socket a client's datagrams reach (SO_REUSEPORT hashes the address).
    kernel: fn(SocketAddr) -> usize,
    events: Arc<EventQueue>,
    stats: Stats,
    now: Instant,
    start: Instant,
}

impl World {
    fn new(config: PeerConfig) -> Self {
        Self::sharded(config, 1, |_| 0)
    }

    fn sharded(config: PeerConfig, shards: usize, kernel: fn(SocketAddr) -> usize) -> Self {
        let events = Arc::new(EventQueue::default());
        let stats = Stats::default();
        let now = Instant::now();
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate();
        let config = Arc::new(config);
        let roster = Arc::new(Roster::new(config.max_peers, config.max_peers_per_ip));
        let tables = (0..shards)
            .map(|shard| {
                let place = Place {
                    shard,
                    shards,
                    roster: roster.clone(),
                };
                PeerTable::new(
                    config.clone(),
                    place,
                    vec![SERVER.parse().unwrap()],
                    cert.clone(),
                    events.clone(),
                    stats.clone(),
                    now,
                )
            })
            .collect();
        Self {
            tables,
            roster,
            kernel,
            events,
            stats,
            now,
            start: now,
        }
    }

    /// Passes the tables' transfers to their shards until there are none.
    fn transfer(&mut self) {
        loop {
            let mut moved = false;
            for from in 0..self.tables.len() {
                for (to, command) in self.tables[from].take_transfers() {
                    self.tables[to].handle_command(self.now, command);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// A client offers; shard 0 answers (`POST /connect` without HTTP).
    fn connect(&mut self, port: u16) -> (Client, PeerId) {
        self.connect_on(0, port)
    }

    /// A client offers; the table of `shard` answers.
    fn connect_on(&mut self, shard: usize, port: u16) -> (Client, PeerId) {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .set_stats_interval(None)
            .build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let ids: Vec<ChannelId> = CHANNELS
            .iter()
            .map(|&(channel, label)| api.add_channel_with_config(channel_config(channel, label)))
            .collect();
        let (offer, pending) = api.apply().unwrap();
        let (reply, mut answer) = oneshot::channel();
        self.tables[shard].handle_command(
            self.now,
            Command::Connect {
                offer: offer.to_sdp_string(),
                ip: Some(addr.ip()),
                reply,
            },
        );
        let (peer, answer) = answer.try_recv().unwrap().unwrap();
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        let client = Client {
            rtc,
            addr,
            reliable: ids[0],
            unreliable: ids[1],
            events: Vec::new(),
            deadline: self.now,
        };
        (client, peer)
    }

    /// Moves every datagram both ways until neither side has one to send (each `Rtc` drained
    /// after every input, as str0m asks). Time does not move.
    fn exchange(&mut self, clients: &mut [&mut Client]) {
        let server: SocketAddr = SERVER.parse().unwrap();
        let mut to_server = Vec::new();
        for client in clients.iter_mut() {
            client.deadline = client.drain(&mut to_server);
        }
        loop {
            for (from, bytes) in to_server.drain(..) {
                let shard = (self.kernel)(from);
                self.tables[shard].handle_datagram(self.now, from, &bytes);
            }
            self.transfer();
            let to_clients: Vec<_> = self
                .tables
                .iter_mut()
                .flat_map(PeerTable::take_transmits)
                .collect();
            if to_clients.is_empty() {
                return;
            }
            for (to, bytes) in to_clients {
                let client = clients.iter_mut().find(|c| c.addr == to).unwrap();
                let receive = Receive::new(Protocol::Udp, to, server, &bytes).unwrap();
                client
                    .rtc
                    .handle_input(Input::Receive(self.now, receive))
                    .unwrap();
                client.deadline = client.drain(&mut to_server);
            }
        }
    }

    /// Moves time to the earliest deadline of the table and the clients and lets them handle it.
    /// Returns false, without moving time, once that deadline is more than `limit` after the
    /// start.
    fn advance(&mut self, clients: &mut [&mut Client], limit: Duration) -> bool {
        let clients_next = clients.iter().map(|c| c.deadline).min();
        let tables_next = self
            .tables
            .iter_mut()
            .filter_map(PeerTable::poll_timeout)
            .min();
        let next = [tables_next, clients_next]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now)
            .max(self.now);
        if next - self.start > limit {
            return false;
        }
        self.now = next;
        for table in &mut self.tables {
            table.handle_timeout(self.now);
        }
        self.transfer();
        for client in clients.iter_mut() {
            client.rtc.handle_input(Input::Timeout(self.now)).unwrap();
        }
        true
    }

    /// Exchanges what is ready, then moves time.
    fn step(&mut self, clients: &mut [&mut Client], limit: Duration) -> bool {
        self.exchange(clients);
        self.advance(clients, limit)
    }

    /// Runs until `done` says so (given the events so far), within `limit` of simulated time.
    fn run_until(
        &mut self,
        clients: &mut [&mut Client],
        limit: Duration,
        mut done: impl FnMut(&[Event], &[&mut Client]) -> bool,
    ) -> Vec<Event> {
        let mut seen = Vec::new();
        loop {
            self.exchange(clients);
            seen.extend(self.events.take_all());
            if done(&seen, clients) {
                return seen;
            }
            assert!(self.advance(clients, limit), "not done within {limit:?}");
        }
    }
}

/// A whole binary message in the data channel framing (docs/protocol.md).
fn whole(bytes: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(bytes);
    frame
}

fn opened(events: &[Event], peer: PeerId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Open(p) if *p == peer))
}

#[test]
fn a_client_connects_exchanges_messages_both_ways_and_is_kicked_without_a_network() {
    let mut world = World::new(PeerConfig::default());
    let (mut client, peer) = world.connect(6000);
    world.run_until(&mut [&mut client], Duration::from_secs(5), |events, _| {
        opened(events, peer)
    });
    let handshake = world.now - world.start;
    eprintln!("HANDSHAKE {handshake:?}");
    // On a perfect network with no CPU cost, what is left is the protocols' pacing.
    assert!(handshake < Duration::from_millis(300), "{handshake:?}");

    // Client to server, both channels.
    for (id, text) in [(client.reliable, "in-order"), (client.unreliable, "lossy")] {
        let mut channel = client.rtc.channel(id).unwrap();
        channel.write(true, &whole(text.as_bytes())).unwrap();
    }
    let events = world.run_until(&mut [&mut client], Duration::from_secs(10), |events, _| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Received(..)))
            .count()
            == 2
    });
    let received: Vec<(Channel, Data)> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::Received(p, channel, data) if p == peer => Some((channel, data)),
            _ => None,
        })
        .collect();
    assert!(received.contains(&(Channel::Reliable, Data::Binary(b"in-order".to_vec()))));
    assert!(received.contains(&(Channel::Unreliable, Data::Binary(b"lossy".to_vec()))));

    // Server to client: a reliable message of 1 MiB, past str0m's 128 KiB of SCTP buffer, arrives
    // whole through the peer's outbox.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    world.tables[0].handle_command(
        world.now,
        Command::Send {
            peers: Some(vec![peer]),
            channel: Channel::Reliable,
            data: Data::Binary(big.clone()),
        },
    );
    let mut reassembler = switchboard_protocol::frame::Reassembler::new(16 << 20);
    let mut got = None;
    while got.is_none() {
        assert!(world.step(&mut [&mut client], Duration::from_secs(60)));
        for event in client.events.drain(..) {
            if let RtcEvent::ChannelData(data) = event {
                if data.id == client.reliable {
                    if let Ok(Some(message)) = reassembler.push(&data.data) {
                        got = Some(message);
                    }
                }
            }
        }
    }
    assert_eq!(
        got,
        Some(switchboard_protocol::frame::Message::Binary(big.clone()))
    );

    // A kick: the application hears `Closed`, the client gets the goodbye with the reason.
    world.tables[0].handle_command(
        world.now,
        Command::Kick {
            peer,
            reason: "cheating".into(),
        },
    );
    let events = world.events.take_all();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Closed(p, r) if *p == peer && r == "kicked: cheating")));
    let mut goodbye = None;
    for _ in 0..1000 {
        if !world.step(&mut [&mut client], Duration::from_secs(120)) {
            break;
        }
        for event in client.events.drain(..) {
            if let RtcEvent::ChannelData(data) = event {
                if let Ok(Some(switchboard_protocol::frame::Message::Goodbye(reason))) =
                    reassembler.push(&data.data)
                {
                    goodbye = Some(reason);
                }
            }
        }
        if goodbye.is_some() && world.tables[0].peer_count() == 0 {
            break;
        }
    }
    assert_eq!(goodbye.as_deref(), Some("cheating"));
    assert_eq!(
        world.tables[0].peer_count(),
        0,
        "the peer is removed after its goodbye"
    );
}

#[test]
fn a_client_that_never_completes_its_handshake_is_dropped_at_connect_timeout() {
    let config = PeerConfig {
        connect_timeout: Duration::from_secs(2),
        ..PeerConfig::default()
    };
    let mut world = World::new(config);
    let (_client, peer) = world.connect(6001);
    assert_eq!(world.tables[0].peer_count(), 1);
    // The client's datagrams never arrive: only time passes.
    while world.tables[0].peer_count() > 0 {
        let at = world.tables[0]
            .poll_timeout()
            .expect("a half-open peer has a deadline");
        assert!(
            at - world.start <= Duration::from_secs(2),
            "{:?}",
            at - world.start
        );
        world.now = at;
        world.tables[0].handle_timeout(at);
        world.tables[0].take_transmits();
    }
    assert!(world.now - world.start >= Duration::from_secs(2));
    // It never opened, so the application never heard of it.
    assert!(!world
        .events
        .take_all()
        .iter()
        .any(|e| matches!(e, Event::Open(p) | Event::Closed(p, _) if *p == peer)));
}

#[test]
fn plain_stun_is_answered_and_unknown_datagrams_are_dropped() {
    let mut world = World::new(PeerConfig::default());
    let source: SocketAddr = "192.0.2.7:4242".parse().unwrap();
    // A STUN Binding request without USERNAME: a plain STUN client.
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    request.extend_from_slice(&[9; 12]);
    world.tables[0].handle_datagram(world.now, source, &request);
    let replies = world.tables[0].take_transmits();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, source);
    assert_eq!(
        &replies[0].1[..2],
        &[0x01, 0x01],
        "a Binding success response"
    );
    // DTLS from an address nobody has: dropped.
    world.tables[0].handle_datagram(world.now, source, &[22, 254, 253, 0, 0]);
    assert!(world.tables[0].take_transmits().is_empty());
    assert_eq!(world.tables[0].peer_count(), 0);
}

/// Clients on odd ports reach shard 1's socket, even ports shard 0's.
fn by_port_parity(addr: SocketAddr) -> usize {
    usize::from(addr.port() % 2)
}

#[test]
fn a_peer_made_on_one_shard_moves_to_the_shard_its_browser_reaches_and_every_command_follows() {
    let mut world = World::sharded(PeerConfig::default(), 2, by_port_parity);
    // Made on shard 0, reaching shard 1 (odd port): it must move. Made on shard 1, reaching
    // shard 1: it stays. Made on shard 1, reaching shard 0: it moves the other way.
    let (mut moving, moving_id) = world.connect_on(0, 7001);
    let (mut staying, staying_id) = world.connect_on(1, 7003);
    let (mut back, back_id) = world.connect_on(1, 7004);
    assert_eq!(world.roster.shard_of(moving_id), Some(0));
    let ids = [moving_id, staying_id, back_id];
    world.run_until(
        &mut [&mut moving, &mut staying, &mut back],
        Duration::from_secs(5),
        |events, _| ids.iter().all(|&id| opened(events, id)),
    );
    assert_eq!(world.roster.shard_of(moving_id), Some(1));
    assert_eq!(world.roster.shard_of(staying_id), Some(1));
    assert_eq!(world.roster.shard_of(back_id), Some(0));
    assert_eq!(world.stats.peers_moved.get(), 2);
    assert_eq!(world.roster.len(), 3);
    assert_eq!(world.tables[0].peer_count(), 1);
    assert_eq!(world.tables[1].peer_count(), 2);

    // A broadcast goes to every shard and reaches every peer.
    for table in &mut world.tables {
        table.handle_command(
            world.now,
            Command::Send {
                peers: None,
                channel: Channel::Reliable,
                data: Data::Text("tick".into()),
            },
        );
    }
    let got_tick = |client: &Client| {
        client.events.iter().any(|e| {
            matches!(e, RtcEvent::ChannelData(d) if d.id == client.reliable && d.data.ends_with(b"tick"))
        })
    };
    for _ in 0..100 {
        if [&moving, &staying, &back].iter().all(|c| got_tick(c)) {
            break;
        }
        assert!(world.step(
            &mut [&mut moving, &mut staying, &mut back],
            Duration::from_secs(60)
        ));
    }
    assert!([&moving, &staying, &back].iter().all(|c| got_tick(c)));

    // A kick handed to the shard that made the peer (where a handle could still think it is)
    // is passed on to the shard that holds it.
    world.tables[0].handle_command(
        world.now,
        Command::Kick {
            peer: moving_id,
            reason: "bye".into(),
        },
    );
    world.transfer();
    let events = world.events.take_all();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Closed(p, r) if *p == moving_id && r == "kicked: bye")));
    for _ in 0..1000 {
        if world.roster.shard_of(moving_id).is_none() {
            break;
        }
        assert!(world.step(
            &mut [&mut moving, &mut staying, &mut back],
            Duration::from_secs(120)
        ));
    }
    assert_eq!(
        world.roster.shard_of(moving_id),
        None,
        "gone from the roster"
    );
    assert_eq!(world.roster.len(), 2);
}

#[test]
fn limits_are_counted_across_shards() {
    let config = PeerConfig {
        max_peers: 2,
        ..PeerConfig::default()
    };
    let mut world = World::sharded(config, 2, by_port_parity);
    world.connect_on(0, 7101);
    world.connect_on(1, 7102);
    let (reply, mut answer) = oneshot::channel();
    world.tables[0].handle_command(
        world.now,
        Command::Connect {
            offer: String::new(),
            ip: None,
            reply,
        },
    );
    assert_eq!(
        answer.try_recv().unwrap().unwrap_err(),
        crate::api::ConnectError::Full(2)
    );
}

#[test]
fn only_checks_for_peers_not_heard_from_yet_cross_between_shards() {
    let mut world = World::sharded(PeerConfig::default(), 2, by_port_parity);
    let attacker: SocketAddr = "192.0.2.9:4001".parse().unwrap();
    // A flood of checks with made-up ufrags at shard 1, some shaped like the old shard-named
    // ufrags: every one is dropped there, none is queued for shard 0.
    for i in 0..1000 {
        let check = crate::demux::tests::binding(Some(&format!("{:02x}made{i}:x", i % 2)));
        world.tables[1].handle_datagram(world.now, attacker, &check);
        assert!(world.tables[1].take_transfers().is_empty());
    }
    assert_eq!(world.stats.checks_passed_on.get(), 0);

    // A peer made on shard 0 whose browser reaches shard 0: heard there, it stays there.
    let (mut client, peer) = world.connect_on(0, 7200);
    let ufrag = world.tables[0].routes.ufrag_of(peer).unwrap().to_owned();
    assert_eq!(world.roster.awaited_by(&ufrag), Some(0), "awaited before");
    world.run_until(&mut [&mut client], Duration::from_secs(5), |events, _| {
        opened(events, peer)
    });
    assert_eq!(
        world.roster.awaited_by(&ufrag),
        None,
        "heard: no longer awaited"
    );
    // Its ufrag replayed at shard 1 (another path, or someone who saw it): not passed on,
    // and the peer does not move.
    let check = crate::demux::tests::binding(Some(&format!("{ufrag}:x")));
    world.tables[1].handle_datagram(world.now, attacker, &check);
    assert!(world.tables[1].take_transfers().is_empty());
    assert_eq!(world.stats.checks_passed_on.get(), 0);
    assert_eq!(world.roster.shard_of(peer), Some(0));
    assert_eq!(world.stats.peers_moved.get(), 0);
}
