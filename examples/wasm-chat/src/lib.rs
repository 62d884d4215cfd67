//! The Rust client in the browser: a thin JavaScript face over `switchboard_client::Room` for
//! the `/demo/rust-chat` page, which calls [`WasmRoom::poll`] once per frame as a game loop
//! would, over `Connection` to a server peer ([`WasmConnection`]) and over pairing by codes
//! ([`WasmPairingOffer`], [`WasmPairingAnswer`]), and a toy GGRS rollback game
//! ([`WasmRollback`]). Only built for wasm32
//! (`scripts/build-wasm-demo.sh`); empty elsewhere.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object, Reflect, Uint8Array};
use switchboard_client::{
    ConnectOptions, Connection, ConnectionEvent, Data, Error, Event, JoinOptions, PairingAnswer,
    PairingOffer, PeerId, PeerInfo, Room, Transport,
};
use wasm_bindgen::prelude::*;

mod rollback;
mod toy_game;
pub use rollback::WasmRollback;

/// A joined room, for JavaScript.
#[wasm_bindgen]
pub struct WasmRoom {
    room: Room,
}

fn js_error(error: Error) -> JsError {
    JsError::new(&error.to_string())
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object.into()
}

fn peer_fields(kind: &str, peer: &PeerInfo) -> Vec<(&'static str, JsValue)> {
    vec![
        ("type", kind.into()),
        ("peer", peer.id.to_string().into()),
        (
            "name",
            peer.name.clone().map_or(JsValue::NULL, JsValue::from),
        ),
    ]
}

fn data_value(data: Data) -> JsValue {
    match data {
        Data::Text(text) => text.into(),
        Data::Binary(bytes) => Uint8Array::from(bytes.as_slice()).into(),
    }
}

fn event_value(event: Event) -> JsValue {
    match event {
        Event::PeerJoined(peer) => object(&peer_fields("join", &peer)),
        Event::PeerConnected(peer) => object(&peer_fields("connect", &peer)),
        Event::PeerDisconnected(peer) => object(&peer_fields("disconnect", &peer)),
        Event::PeerLeft { peer, reason } => {
            let mut fields = peer_fields("leave", &peer);
            fields.push(("reason", reason.into()));
            object(&fields)
        }
        Event::Message {
            peer,
            channel,
            data,
        } => object(&[
            ("type", "message".into()),
            ("peer", peer.to_string().into()),
            ("channel", channel.into()),
            ("data", data_value(data)),
        ]),
        Event::HostChanged(host) => {
            object(&[("type", "host".into()), ("peer", host.to_string().into())])
        }
        Event::Started => object(&[("type", "started".into())]),
        Event::MetaChanged(meta) => object(&[
            ("type", "meta".into()),
            ("meta", meta.to_json_string().unwrap_or_default().into()),
        ]),
        Event::Error { error, peer } => object(&[
            ("type", "error".into()),
            ("code", error.code.into()),
            ("message", error.message.into()),
            ("peer", peer.map_or(JsValue::NULL, |p| p.to_string().into())),
        ]),
        Event::Closed { code, reason } => object(&[
            ("type", "close".into()),
            ("code", code.into()),
            ("reason", reason.into()),
        ]),
    }
}

fn peer_id(peer: &str) -> Result<PeerId, JsError> {
    peer.parse()
        .map_err(|_| JsError::new(&format!("unknown_peer: {peer} is not a peer id")))
}

/// A string is sent as text, a `Uint8Array` as binary.
fn data_of(value: &JsValue) -> Result<Data, JsError> {
    if let Some(text) = value.as_string() {
        return Ok(Data::Text(text));
    }
    if value.is_instance_of::<Uint8Array>() {
        return Ok(Data::Binary(Uint8Array::new(value).to_vec()));
    }
    Err(JsError::new(
        "invalid_message: send a string or a Uint8Array",
    ))
}

#[wasm_bindgen]
impl WasmRoom {
    /// Joins the room at `url` (`ws://host:port/ws/room`), with a user name if given;
    /// `resumable`: the room keeps its place when its server node drains (cluster mode).
    pub async fn join(
        url: String,
        user: Option<String>,
        resumable: Option<bool>,
    ) -> Result<WasmRoom, JsError> {
        let options = JoinOptions {
            user,
            resumable: resumable.unwrap_or(false),
            ..JoinOptions::default()
        };
        let room = Room::join(&url, options).await.map_err(js_error)?;
        Ok(Self { room })
    }

    /// Your peer id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.room.id().to_string()
    }

    /// The latest resume token of a resumable room (it changes when the room moves to another
    /// server node), else `undefined`.
    #[wasm_bindgen(getter, js_name = resumeToken)]
    pub fn resume_token(&self) -> Option<String> {
        self.room.resume_token()
    }

    /// The other peers: `{peer, name, connected}` each.
    pub fn peers(&self) -> Array {
        self.room
            .peers()
            .into_iter()
            .map(|(peer, connected)| {
                let mut fields = peer_fields("peer", &peer);
                fields.push(("connected", connected.into()));
                object(&fields)
            })
            .collect()
    }

    /// Every event since the last call, without waiting (call it once per frame): objects
    /// with a `type` of join, connect, disconnect, leave, message, host, started, meta, error
    /// or close.
    pub fn poll(&mut self) -> Array {
        self.room.poll().into_iter().map(event_value).collect()
    }

    /// Sends a string or `Uint8Array` to one peer on a channel.
    pub fn send(&self, peer: &str, channel: &str, data: JsValue) -> Result<(), JsError> {
        self.room
            .send(peer_id(peer)?, channel, data_of(&data)?)
            .map_err(js_error)
    }

    /// Sends to every connected peer; returns how many it went to.
    pub fn broadcast(&self, channel: &str, data: JsValue) -> Result<u32, JsError> {
        let sent = self
            .room
            .broadcast(channel, data_of(&data)?)
            .map_err(js_error)?;
        Ok(u32::try_from(sent).unwrap_or(u32::MAX))
    }

    /// Leaves the room (a `close` event follows).
    pub fn close(&self) {
        self.room.close();
    }

    /// Starts the toy rollback game (GGRS) with `other` over the unreliable channel.
    #[wasm_bindgen(js_name = startRollback)]
    pub fn start_rollback(&self, other: &str) -> Result<WasmRollback, JsError> {
        WasmRollback::start(&self.room, peer_id(other)?)
    }
}

/// A connection to a server peer (`POST /connect`), for JavaScript.
#[wasm_bindgen]
pub struct WasmConnection {
    connection: Connection,
}

fn connection_event_value(event: ConnectionEvent) -> JsValue {
    match event {
        ConnectionEvent::Message { channel, data } => object(&[
            ("type", "message".into()),
            ("channel", channel.into()),
            ("data", data_value(data)),
        ]),
        ConnectionEvent::Error(error) => object(&[
            ("type", "error".into()),
            ("code", error.code.into()),
            ("message", error.message.into()),
        ]),
        ConnectionEvent::Closed { code, reason } => object(&[
            ("type", "close".into()),
            ("code", code.into()),
            ("reason", reason.into()),
        ]),
    }
}

#[wasm_bindgen]
impl WasmConnection {
    /// Connects to the server peer at `url` (its `POST /connect`, absolute or relative).
    pub async fn connect(url: String) -> Result<WasmConnection, JsError> {
        let connection = Connection::to_server(&url, ConnectOptions::default())
            .await
            .map_err(js_error)?;
        Ok(Self { connection })
    }

    /// `webrtc`, or `websocket` (the server's fallback).
    #[wasm_bindgen(getter)]
    pub fn transport(&self) -> String {
        match self.connection.transport() {
            Transport::WebRtc => "webrtc".into(),
            Transport::WebSocket => "websocket".into(),
        }
    }

    /// Our id on the server peer.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> Option<String> {
        self.connection.id().map(|id| id.to_string())
    }

    /// Every event since the last call: `{type: "message", channel, data}`, `error`, `close`.
    pub fn poll(&mut self) -> Array {
        self.connection
            .poll()
            .into_iter()
            .map(connection_event_value)
            .collect()
    }

    /// Sends a string or `Uint8Array` on `reliable` or `unreliable`.
    pub fn send(&self, channel: &str, data: JsValue) -> Result<(), JsError> {
        self.connection
            .send(channel, data_of(&data)?)
            .map_err(js_error)
    }

    /// Closes the connection (a goodbye first).
    pub fn close(&self) {
        self.connection.close();
    }
}

/// A pairing offer waiting for the other device's answer code, for JavaScript.
#[wasm_bindgen]
pub struct WasmPairingOffer {
    offer: PairingOffer,
}

#[wasm_bindgen]
impl WasmPairingOffer {
    /// Makes an offer code (no server).
    pub async fn create() -> Result<WasmPairingOffer, JsError> {
        let offer = PairingOffer::create(ConnectOptions::default())
            .await
            .map_err(js_error)?;
        Ok(Self { offer })
    }

    /// The offer code (base64url text).
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> String {
        self.offer.code().code().to_owned()
    }

    /// Takes the answer code; resolves once the channels are open.
    pub async fn accept(self, answer: String) -> Result<WasmConnection, JsError> {
        let connection = self.offer.accept(&answer).await.map_err(js_error)?;
        Ok(WasmConnection { connection })
    }
}

/// Our answer to another device's offer code, for JavaScript.
#[wasm_bindgen]
pub struct WasmPairingAnswer {
    answer: PairingAnswer,
}

#[wasm_bindgen]
impl WasmPairingAnswer {
    /// Reads the offer code and makes the answer code.
    pub async fn answer(offer: String) -> Result<WasmPairingAnswer, JsError> {
        let answer = PairingAnswer::answer(&offer, ConnectOptions::default())
            .await
            .map_err(js_error)?;
        Ok(Self { answer })
    }

    /// The answer code (base64url text).
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> String {
        self.answer.code().code().to_owned()
    }

    /// Resolves once the channels are open.
    pub async fn connected(self) -> Result<WasmConnection, JsError> {
        let connection = self.answer.connected().await.map_err(js_error)?;
        Ok(WasmConnection { connection })
    }
}
