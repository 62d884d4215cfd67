//! To a server peer (`switchboard-peer`) without a hub: `POST /connect` with our offer, WebRTC on
//! one UDP socket, and the WebSocket fallback (`GET /connect/ws`) when WebRTC does not open in
//! time, as the browser client's `connectToServer` does.

use std::time::Instant;

use switchboard_protocol::PeerId;

use super::connection::Connection;
use super::connection_task::{open_link, Transport as Carrier};
use super::endpoint::Endpoint;
use super::http_offer::post_offer;
use super::link::{Limits, Link, Outcome};
use crate::channels::{channel_specs, default_channels, fingerprint, ChannelSpec};
use crate::connect_options::{server_urls, ConnectOptions, ServerUrls};
use crate::signal::{Role, Signal};
use crate::Error;

impl Connection {
    /// Connects to the server peer whose `POST /connect` endpoint is `url`
    /// (`http://host:port/connect`) and returns once both channels are open, over WebRTC or,
    /// when it does not open within `webrtc_timeout`, over the WebSocket fallback. Refusals
    /// keep the server's code (`unauthorized`, `server_full`, `too_many_connections`, ...).
    pub async fn to_server(url: &str, options: ConnectOptions) -> Result<Self, Error> {
        options.validate()?;
        if options.channels != default_channels() {
            return Err(Error::new(
                "invalid_options",
                "a server peer has exactly the default channels, reliable and unreliable",
            ));
        }
        let urls = server_urls(url, options.token.as_deref())?;
        let specs = channel_specs(&options.channels)?;
        let (id, carrier) = match webrtc(&urls, &specs, &options).await {
            Ok((id, carrier)) => (Some(id), carrier),
            Err(error) if error.code == "webrtc_timeout" && options.websocket_fallback => {
                (None, websocket(&urls, &options).await?)
            }
            Err(error) => return Err(error),
        };
        Ok(Self::start(carrier, id, specs, &options))
    }
}

/// The WebRTC way: our offer (with our host candidates; the server is ICE-lite and learns our
/// address from our checks) by `POST`, its answer, then ICE and DTLS until the channels open.
/// `webrtc_timeout` when they do not open in time.
async fn webrtc(
    urls: &ServerUrls,
    specs: &[ChannelSpec],
    options: &ConnectOptions,
) -> Result<(PeerId, Carrier), Error> {
    let endpoint = Endpoint::bind(&[], options.request_timeout, options.udp_buffer_bytes).await?;
    let limits = Limits {
        max_message_bytes: options.max_message_bytes,
        connect_timeout: options.webrtc_timeout + options.request_timeout,
        disconnect_timeout: options.disconnect_timeout,
        max_queued_candidates: 0,
    };
    let mut link = Link::new(
        Role::Offerer,
        specs,
        &fingerprint(specs),
        &endpoint.candidates,
        limits,
        Instant::now(),
    );
    let offer = link.take_outcomes().into_iter().find_map(|o| match o {
        Outcome::Signal(Signal::Offer { sdp, .. }) => Some(sdp),
        _ => None,
    });
    let offer = offer.ok_or_else(|| Error::new("webrtc_error", "no offer was made"))?;
    let posting = post_offer(
        urls,
        offer,
        options.token.as_deref(),
        options.tls_roots_pem.as_deref(),
    );
    let (id, answer) = tokio::time::timeout(options.request_timeout, posting)
        .await
        .map_err(|_| {
            Error::new(
                "connection_failed",
                format!("no answer within {:?}", options.request_timeout),
            )
        })??;
    link.signal(Signal::Answer { sdp: answer });
    link.signal(Signal::Candidate(None));
    let early = open_link(&endpoint, &mut link, options.webrtc_timeout).await?;
    Ok((
        id,
        Carrier::WebRtc {
            endpoint,
            link: Box::new(link),
            early,
        },
    ))
}

/// The fallback: `GET /connect/ws` upgraded to a WebSocket.
async fn websocket(urls: &ServerUrls, options: &ConnectOptions) -> Result<Carrier, Error> {
    let connector = if urls.tls {
        Some(super::tls::connector(options.tls_roots_pem.as_deref())?)
    } else {
        None
    };
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        urls.socket.as_str(),
        None,
        false,
        connector,
    );
    let (ws, _) = tokio::time::timeout(options.request_timeout, connecting)
        .await
        .map_err(|_| {
            Error::new(
                "connection_failed",
                "the WebSocket fallback was not accepted in time",
            )
        })?
        .map_err(|e| super::room::refused(&e))?;
    Ok(Carrier::WebSocket(Box::new(ws)))
}
