//! The pages and scripts the server serves, embedded in the binary: the landing page, the
//! browser client bundle (built from `clients/js`, committed so a fresh clone needs no npm) and
//! the demos (the Rust client's wasm demo among them).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: HTML,
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        path: "/switchboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../clients/js/dist/switchboard.js"),
    },
    Asset {
        path: "/favicon.ico",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
    Asset {
        path: "/demo/chat",
        content_type: HTML,
        body: include_bytes!("../assets/demo/chat.html"),
    },
    Asset {
        path: "/demo/dots",
        content_type: HTML,
        body: include_bytes!("../assets/demo/dots.html"),
    },
    Asset {
        path: "/demo/pair",
        content_type: HTML,
        body: include_bytes!("../assets/demo/pair.html"),
    },
    Asset {
        path: "/demo/rust-chat",
        content_type: HTML,
        body: include_bytes!("../assets/demo/rust-chat.html"),
    },
    // The Rust client compiled to wasm32 (scripts/build-wasm-demo.sh; committed like the
    // browser client bundle, so a fresh clone serves it without a wasm toolchain).
    Asset {
        path: "/demo/wasm/switchboard_wasm_chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/demo/wasm/switchboard_wasm_chat.js"),
    },
    Asset {
        path: "/demo/wasm/switchboard_wasm_chat_bg.wasm",
        content_type: "application/wasm",
        body: include_bytes!("../assets/demo/wasm/switchboard_wasm_chat_bg.wasm"),
    },
];

/// `(path, handler)` for every embedded file, to be added to the router.
pub fn routes<S: Clone + Send + Sync + 'static>(
) -> impl Iterator<Item = (&'static str, MethodRouter<S>)> {
    ASSETS.iter().map(|asset| {
        let handler = get(move || async move { serve(asset) });
        (asset.path, handler)
    })
}

fn serve(asset: &'static Asset) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            // Embedded files change with the binary: let browsers revalidate.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}
