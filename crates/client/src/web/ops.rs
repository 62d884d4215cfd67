//! The negotiation steps of a browser link that wait on the browser's promises (offer,
//! answer, descriptions, candidates), and their runner: one at a time, in order, each awaited
//! outside the borrow of the link's owner.

use std::cell::RefCell;
use std::rc::Weak;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RtcIceCandidateInit, RtcPeerConnection, RtcSdpType, RtcSessionDescriptionInit};

use super::link::Link;
use crate::signal::Step;

/// What owns links (a room's shell, a connection): finds one by its key, handles what it
/// reported. [`run_ops`] reaches it through a weak reference.
pub(crate) trait LinkOwner: 'static {
    /// How the owner names a link (with a serial, so a replaced link's late steps are ignored).
    type Key: Copy + 'static;
    /// The link, if it still exists.
    fn link(&mut self, key: Self::Key) -> Option<&mut Link>;
    /// Handles the link's outcomes.
    fn outcomes(&mut self, key: Self::Key);
}

/// Runs a link's negotiation steps one at a time, each awaited outside the owner's borrow.
pub(crate) fn run_ops<O: LinkOwner>(owner: Weak<RefCell<O>>, key: O::Key) {
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let next = match owner.upgrade() {
                Some(o) => o.borrow_mut().link(key).and_then(Link::next_op),
                None => None,
            };
            let Some((pc, op)) = next else {
                return;
            };
            let result = run(pc, op).await;
            let Some(o) = owner.upgrade() else {
                return;
            };
            let mut o = o.borrow_mut();
            if let Some(link) = o.link(key) {
                link.done(result);
                o.outcomes(key);
            }
        }
    });
}

/// One promise-returning step of the negotiation.
pub(crate) enum Op {
    Offer,
    Apply(Step),
}

/// How an [`Op`] ended.
pub(crate) enum Done {
    Offered(String),
    Answered(String),
    RemoteApplied,
    Nothing,
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    init
}

/// The `sdp` of a description the browser created.
fn sdp_of(description: &JsValue) -> Result<String, JsValue> {
    Reflect::get(description, &JsValue::from_str("sdp"))?
        .as_string()
        .ok_or_else(|| JsValue::from_str("the browser's description has no sdp"))
}

/// Runs one step on `pc` (outside its owner's borrow: it awaits the browser).
pub(crate) async fn run(pc: RtcPeerConnection, op: Op) -> Result<Done, JsValue> {
    match op {
        Op::Offer => {
            let offer = JsFuture::from(pc.create_offer()).await?;
            let sdp = sdp_of(&offer)?;
            JsFuture::from(pc.set_local_description(&description(RtcSdpType::Offer, &sdp))).await?;
            Ok(Done::Offered(sdp))
        }
        Op::Apply(Step::AcceptOffer(sdp)) => {
            let offer = description(RtcSdpType::Offer, &sdp);
            JsFuture::from(pc.set_remote_description(&offer)).await?;
            let answer = JsFuture::from(pc.create_answer()).await?;
            let sdp = sdp_of(&answer)?;
            let answer = description(RtcSdpType::Answer, &sdp);
            JsFuture::from(pc.set_local_description(&answer)).await?;
            Ok(Done::Answered(sdp))
        }
        Op::Apply(Step::AcceptAnswer(sdp)) => {
            let answer = description(RtcSdpType::Answer, &sdp);
            JsFuture::from(pc.set_remote_description(&answer)).await?;
            Ok(Done::RemoteApplied)
        }
        Op::Apply(Step::AddCandidate(Some(candidate))) => {
            let init = RtcIceCandidateInit::new(&candidate.candidate);
            init.set_sdp_mid(candidate.sdp_mid.as_deref());
            init.set_sdp_m_line_index(
                candidate
                    .sdp_mline_index
                    .and_then(|i| u16::try_from(i).ok()),
            );
            let added = pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init));
            JsFuture::from(added).await?;
            Ok(Done::Nothing)
        }
        Op::Apply(Step::AddCandidate(None)) => Ok(Done::Nothing),
    }
}
