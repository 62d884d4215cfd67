//! Pairing without a server in the browser (wasm32), as natively and as the browser client's
//! `createPairingOffer` / `answerPairingOffer`: codes carry every candidate the browser
//! gathered; browser, wasm and native peers pair with each other.

use futures_channel::oneshot;
use js_sys::{Array, Object, Reflect};
use switchboard_protocol::compact::SdpType;
use wasm_bindgen::JsValue;
use web_sys::RtcConfiguration;

use super::connection::{Connection, Opening};
use crate::channels::{channel_specs, fingerprint};
use crate::connect_options::ConnectOptions;
use crate::pairing_code::{compact, read_code, PairingCode};
use crate::signal::{Role, Signal};
use crate::Error;

/// The browser's ICE configuration for a pairing: the STUN server, if one is given.
fn ice_config(options: &ConnectOptions) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    if let Some(stun) = &options.stun_server {
        let server = Object::new();
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(
            &server,
            &JsValue::from_str("urls"),
            &JsValue::from_str(&format!("stun:{stun}")),
        );
        config.set_ice_servers(&Array::of1(&server));
    }
    config
}

/// An offer waiting for the other device's answer.
pub struct PairingOffer {
    code: PairingCode,
    opening: Opening,
    options: ConnectOptions,
}

impl PairingOffer {
    /// Makes an offer code with every candidate the browser gathered (from
    /// `options.stun_server` too, when set).
    pub async fn create(options: ConnectOptions) -> Result<Self, Error> {
        let config = ice_config(&options);
        let mut opening = Opening::new(Role::Offerer, &options, &config, options.connect_timeout)?;
        let sdp = opening.local_sdp().await?;
        Ok(Self {
            code: compact(&sdp)?,
            opening,
            options,
        })
    }

    /// The code to hand over.
    pub fn code(&self) -> &PairingCode {
        &self.code
    }

    /// Takes the answer code (either text form, or a link) and returns once the channels are
    /// open. Errors: `invalid_code`, `connection_failed` (not open within `connect_timeout`).
    pub async fn accept(self, answer: &str) -> Result<Connection, Error> {
        let sdp = read_code(answer, SdpType::Answer)?;
        self.opening.signal(Signal::Answer { sdp });
        self.opening
            .opened(None, self.options.connect_timeout, "connection_failed")
            .await
    }
}

/// Our answer to another device's offer; the connection opens in the background meanwhile.
pub struct PairingAnswer {
    code: PairingCode,
    opening: oneshot::Receiver<Result<Connection, Error>>,
}

impl PairingAnswer {
    /// Reads the offer code (either text form, or a link) and makes the answer code. ICE
    /// starts at once: hand the code over, then wait for [`PairingAnswer::connected`].
    pub async fn answer(offer: &str, options: ConnectOptions) -> Result<Self, Error> {
        let sdp = read_code(offer, SdpType::Offer)?;
        let specs = channel_specs(&options.channels)?;
        let config = ice_config(&options);
        let mut opening = Opening::new(Role::Answerer, &options, &config, options.connect_timeout)?;
        opening.signal(Signal::Offer {
            sdp,
            channels: fingerprint(&specs),
        });
        let code = compact(&opening.local_sdp().await?)?;
        let (done, waiting) = oneshot::channel();
        let within = options.connect_timeout;
        wasm_bindgen_futures::spawn_local(async move {
            let _ = done.send(opening.opened(None, within, "connection_failed").await);
        });
        Ok(Self {
            code,
            opening: waiting,
        })
    }

    /// The code to hand back.
    pub fn code(&self) -> &PairingCode {
        &self.code
    }

    /// Returns once the channels are open; `connection_failed` when they do not open within
    /// `connect_timeout`.
    pub async fn connected(self) -> Result<Connection, Error> {
        self.opening
            .await
            .map_err(|_| Error::new("connection_failed", "the connection was abandoned"))?
    }
}
