//! The two signaling protocols the load generator speaks: Switchboard v1 (JSON) and
//! matchbox_server's JSON protocol. Only what the benchmark needs.

use serde::Deserialize;

/// Which server is under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// Switchboard, protocol v1, JSON encoding.
    Switchboard,
    /// matchbox_server (crates.io).
    Matchbox,
    /// Switchboard's matchbox endpoint (`/matchbox/{room}`): matchbox's protocol on our hub.
    SwitchboardMatchbox,
}

/// The benchmark's payload: sender index, sequence number, send time (µs since start).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Probe {
    pub s: u32,
    pub n: u64,
    pub t: u64,
}

/// The path of a room on the server.
pub fn room_path(flavor: Flavor, room: &str) -> String {
    match flavor {
        Flavor::Switchboard => format!("/ws/{room}"),
        Flavor::Matchbox => format!("/{room}"),
        Flavor::SwitchboardMatchbox => format!("/matchbox/{room}"),
    }
}

/// Extracts the peer id the server assigned, from the first message after connecting.
pub fn assigned_id(flavor: Flavor, text: &str) -> Option<String> {
    match flavor {
        Flavor::Switchboard => {
            #[derive(Deserialize)]
            struct Welcome {
                #[serde(rename = "type")]
                kind: String,
                id: String,
            }
            let w: Welcome = serde_json::from_str(text).ok()?;
            (w.kind == "welcome").then_some(w.id)
        }
        Flavor::Matchbox | Flavor::SwitchboardMatchbox => {
            #[derive(Deserialize)]
            enum Event {
                IdAssigned(String),
            }
            match serde_json::from_str::<Event>(text).ok()? {
                Event::IdAssigned(id) => Some(id),
            }
        }
    }
}

/// A message carrying `probe` to one peer.
pub fn to_peer(flavor: Flavor, peer: &str, probe: Probe) -> String {
    let Probe { s, n, t } = probe;
    match flavor {
        Flavor::Switchboard => {
            format!(
                r#"{{"type":"message","to":{{"peer":"{peer}"}},"data":{{"s":{s},"n":{n},"t":{t}}}}}"#
            )
        }
        Flavor::Matchbox | Flavor::SwitchboardMatchbox => {
            format!(r#"{{"Signal":{{"receiver":"{peer}","data":{{"s":{s},"n":{n},"t":{t}}}}}}}"#)
        }
    }
}

/// A message carrying `probe` to the whole room (Switchboard only: the server fans out).
pub fn to_room(probe: Probe) -> String {
    let Probe { s, n, t } = probe;
    format!(r#"{{"type":"message","to":"room","data":{{"s":{s},"n":{n},"t":{t}}}}}"#)
}

/// The probe inside a relayed message, if this is one.
pub fn probe(flavor: Flavor, text: &str) -> Option<Probe> {
    match flavor {
        Flavor::Switchboard => {
            #[derive(Deserialize)]
            struct Relayed {
                data: Probe,
            }
            serde_json::from_str::<Relayed>(text).ok().map(|r| r.data)
        }
        Flavor::Matchbox | Flavor::SwitchboardMatchbox => {
            #[derive(Deserialize)]
            struct Signal {
                data: Probe,
            }
            #[derive(Deserialize)]
            enum Event {
                Signal(Signal),
            }
            match serde_json::from_str::<Event>(text).ok()? {
                Event::Signal(s) => Some(s.data),
            }
        }
    }
}
