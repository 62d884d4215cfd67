//! Why a server refused a WebSocket: browsers hide a refused upgrade's HTTP status (the socket
//! just closes with 1006), so the client asks the same URL with a plain GET, which Switchboard
//! servers answer with the same JSON refusal (as the browser client's `whyRefused`).

use std::time::Duration;

use futures_util::future::{select, Either};
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCache, RequestInit, Response};

use super::timer::sleep;
use crate::connect_options::refusal;
use crate::Error;

/// How long the client waits for the server to say why it refused a WebSocket.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(3);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_init(input: &str, init: &RequestInit) -> Promise;
}

/// The server's refusal of the WebSocket at `ws_url`, or `None` when it has none (unreachable,
/// or the failure was not a refusal).
pub(crate) async fn why_refused(ws_url: &str) -> Option<Error> {
    let http_url = if let Some(rest) = ws_url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = ws_url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        ws_url.to_owned()
    };
    let asking = Box::pin(ask(http_url));
    match select(asking, Box::pin(sleep(REFUSAL_TIMEOUT))).await {
        Either::Left((answer, _)) => answer,
        Either::Right(_) => None,
    }
}

async fn ask(url: String) -> Option<Error> {
    let init = RequestInit::new();
    init.set_cache(RequestCache::NoStore);
    let response: Response = JsFuture::from(fetch_with_init(&url, &init))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    let body = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    refusal(response.status(), &Uint8Array::new(&body).to_vec())
}
