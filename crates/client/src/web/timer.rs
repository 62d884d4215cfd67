//! Timers of the page (or worker) the client runs in: a one-shot timeout, a repeating
//! interval and an awaitable sleep. Dropping a timer cancels it.

use std::time::Duration;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(handle: &JsValue);
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

/// A pending timeout or interval; dropped, it is cancelled.
pub(crate) struct Timer {
    handle: JsValue,
    repeats: bool,
    _handler: Closure<dyn FnMut()>,
}

impl Timer {
    /// Calls `f` once after `after`.
    pub(crate) fn once(after: Duration, f: impl FnOnce() + 'static) -> Self {
        let handler = Closure::once(f);
        let handle = set_timeout(handler.as_ref().unchecked_ref(), millis(after));
        Self {
            handle,
            repeats: false,
            _handler: handler,
        }
    }

    /// Calls `f` every `period`.
    pub(crate) fn every(period: Duration, f: impl FnMut() + 'static) -> Self {
        let handler = Closure::<dyn FnMut()>::new(f);
        let handle = set_interval(handler.as_ref().unchecked_ref(), millis(period));
        Self {
            handle,
            repeats: true,
            _handler: handler,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if self.repeats {
            clear_interval(&self.handle);
        } else {
            clear_timeout(&self.handle);
        }
    }
}

/// Resolves after `duration`.
pub(crate) async fn sleep(duration: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, millis(duration));
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
