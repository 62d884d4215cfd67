//! rustysignal's protocol, as its README documents it, so its clients connect at `/rustysignal`
//! (`?user=NAME`) on the hub. Pure translation both ways; the hub core routes.
//!
//! The network is a directory (`RoomOptions::directory`) named `rustysignal:<network>`. A peer
//! sends `{"protocol": "one-to-one" | "one-to-all" | "one-to-self", "to": "<user>", "action":
//! ..., "data": ...}` (`endpoint` is accepted for `to`, as rustysignal's code reads it); the
//! text is delivered as it came: to the user named `to`, to everyone on the network (the sender
//! too, as rustysignal's broadcast does), or back to the sender. Errors are plain text frames.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_protocol::{validate_user_name, ErrorCode, Payload, ProtocolError, ServerMessage};

use crate::push::PushAction;

/// The hub directory of a rustysignal network.
pub fn hub_room(network: &str) -> String {
    format!("rustysignal:{network}")
}

/// The network of `/rustysignal` without a name.
pub const DEFAULT_NETWORK: &str = "default";

/// Where a rustysignal message goes.
#[derive(Debug, PartialEq)]
pub enum Route {
    /// `one-to-one`: the user of this name.
    One(String),
    /// `one-to-all`: everyone on the network, the sender too.
    All,
    /// `one-to-self`: back to the sender.
    Myself,
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(default, borrow)]
    protocol: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    endpoint: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "subscriptionData")]
    subscription_data: Option<&'a RawValue>,
}

/// A decoded rustysignal message.
#[derive(Debug)]
pub struct Request {
    /// Where the text goes, if anywhere.
    pub route: Option<Route>,
    /// The text as it came.
    pub payload: Payload,
    /// rustysignal's push actions: `subscribe-push` (not routed: the subscription's keys are
    /// nobody else's business) and `connection-request` (routed when its target is connected,
    /// else pushed).
    pub push: Option<PushAction>,
}

/// `subscriptionData`: the subscription as a JSON text in a string (as rustysignal's clients
/// send it), or as an object.
fn subscription(data: Option<&RawValue>) -> Result<Payload, ProtocolError> {
    let data = data.ok_or_else(|| invalid("subscribe-push needs subscriptionData"))?;
    let text = match serde_json::from_str::<Cow<str>>(data.get()) {
        Ok(text) => text.into_owned(),
        Err(_) => data.get().to_owned(),
    };
    Payload::from_json(&text).map_err(|_| invalid("subscriptionData is not a JSON subscription"))
}

fn route_of(incoming: &Incoming<'_>) -> Result<Route, ProtocolError> {
    Ok(match incoming.protocol.as_deref() {
        Some("one-to-all") => Route::All,
        Some("one-to-self") => Route::Myself,
        Some("one-to-one") => Route::One(target(incoming)?),
        _ => return Err(invalid(
            "Invalid protocol, valid protocols include: 'one-to-one' 'one-to-self' 'one-to-all'",
        )),
    })
}

/// The user a one-to-one message or a connection request is for: `to`, or `endpoint`.
fn target(incoming: &Incoming<'_>) -> Result<String, ProtocolError> {
    let to = incoming
        .to
        .as_deref()
        .or(incoming.endpoint.as_deref())
        .ok_or_else(|| invalid("No field 'to' provided"))?;
    validate_user_name(to).map_err(|why| invalid(format!("to {why}")))?;
    Ok(to.to_owned())
}

fn invalid(why: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidMessage, why)
}

/// Decodes a text frame: where it goes, the text to deliver (as it came), and a push action.
pub fn decode_request(text: &str) -> Result<Request, ProtocolError> {
    let payload = Payload::from_json(text)
        .map_err(|e| ProtocolError::new(ErrorCode::Malformed, format!("not JSON: {e}")))?;
    let incoming: Incoming = serde_json::from_str(text)
        .map_err(|_| invalid("a rustysignal message is a JSON object with a protocol field"))?;
    match incoming.action.as_deref() {
        Some("subscribe-push") => Ok(Request {
            route: None,
            payload,
            push: Some(PushAction::Subscribe(subscription(
                incoming.subscription_data,
            )?)),
        }),
        Some("connection-request" | "connection_request") => Ok(Request {
            route: route_of(&incoming).ok(),
            payload,
            push: Some(PushAction::Request {
                to: target(&incoming)?,
            }),
        }),
        _ => Ok(Request {
            route: Some(route_of(&incoming)?),
            payload,
            push: None,
        }),
    }
}

/// The text frame for a hub message, or `None` when rustysignal has none for it (it says
/// nothing on connect and has no presence).
pub fn encode_event(message: &ServerMessage) -> Option<Result<String, ProtocolError>> {
    match message {
        ServerMessage::Signal { data, .. } => {
            Some(data.to_json_string().map_err(|e| invalid(e.to_string())))
        }
        ServerMessage::Error { code, message } => Some(Ok(error_text(*code, message))),
        _ => None,
    }
}

/// The plain text rustysignal sends for an error.
pub fn error_text(code: ErrorCode, message: &str) -> String {
    match code {
        ErrorCode::NameTaken => "The username is taken".to_owned(),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::PeerId;

    #[test]
    fn the_three_protocols_route_the_text_as_it_came() {
        let text = r#"{"protocol":"one-to-one","to":"bob","action":"offer","data":{"sdp":"v=0"}}"#;
        let request = decode_request(text).unwrap();
        assert_eq!(request.route, Some(Route::One("bob".into())));
        assert_eq!(request.payload.to_json_string().unwrap(), text);
        assert_eq!(request.push, None);
        let route = |text| decode_request(text).unwrap().route;
        let endpoint = r#"{"protocol":"one-to-one","endpoint":"cat","data":1}"#;
        assert_eq!(route(endpoint), Some(Route::One("cat".into())));
        let all = r#"{"protocol":"one-to-all","action":"hello"}"#;
        assert_eq!(route(all), Some(Route::All));
        assert_eq!(route(r#"{"protocol":"one-to-self"}"#), Some(Route::Myself));
    }

    #[test]
    fn push_actions_as_rustysignal_sends_them() {
        let subscription = r#"{"endpoint":"https://p/x","keys":{"p256dh":"k","auth":"a"}}"#;
        let as_string =
            serde_json::json!({"action": "subscribe-push", "subscriptionData": subscription});
        let request = decode_request(&as_string.to_string()).unwrap();
        assert_eq!(request.route, None, "a subscription is not routed");
        match request.push {
            Some(PushAction::Subscribe(data)) => {
                assert_eq!(data.to_json_string().unwrap(), subscription)
            }
            other => panic!("{other:?}"),
        }
        let as_object =
            format!(r#"{{"action":"subscribe-push","subscriptionData":{subscription}}}"#);
        assert!(matches!(
            decode_request(&as_object).unwrap().push,
            Some(PushAction::Subscribe(_))
        ));
        let ask = r#"{"action":"connection-request","endpoint":"bob"}"#;
        let request = decode_request(ask).unwrap();
        assert_eq!(request.push, Some(PushAction::Request { to: "bob".into() }));
        assert_eq!(request.route, None);
        let routed = r#"{"protocol":"one-to-one","to":"bob","action":"connection_request"}"#;
        assert_eq!(
            decode_request(routed).unwrap().route,
            Some(Route::One("bob".into()))
        );
        for bad in [
            r#"{"action":"subscribe-push"}"#,
            r#"{"action":"subscribe-push","subscriptionData":"not json"}"#,
            r#"{"action":"connection-request"}"#,
        ] {
            assert_eq!(
                decode_request(bad).map(|_| ()).map_err(|e| e.code),
                Err(ErrorCode::InvalidMessage),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let cases = [
            ("nope", ErrorCode::Malformed, "not JSON"),
            ("[1]", ErrorCode::InvalidMessage, "protocol field"),
            (
                r#"{"protocol":"one-to-many"}"#,
                ErrorCode::InvalidMessage,
                "Invalid protocol",
            ),
            (
                r#"{"data":1}"#,
                ErrorCode::InvalidMessage,
                "Invalid protocol",
            ),
            (
                r#"{"protocol":"one-to-one"}"#,
                ErrorCode::InvalidMessage,
                "No field 'to'",
            ),
            (
                r#"{"protocol":"one-to-one","to":"a b"}"#,
                ErrorCode::InvalidMessage,
                "to may only",
            ),
            (
                r#"{"protocol":7}"#,
                ErrorCode::InvalidMessage,
                "protocol field",
            ),
        ];
        for (text, code, why) in cases {
            let error = decode_request(text).map(|_| ()).unwrap_err();
            assert_eq!(error.code, code, "{text}");
            assert!(error.message.contains(why), "{text}: {}", error.message);
        }
    }

    #[test]
    fn hub_messages_become_text_frames() {
        let data = Payload::from_json(r#"{"protocol":"one-to-all"}"#).unwrap();
        let signal = ServerMessage::Signal {
            from: PeerId::from_u128(1),
            data,
        };
        assert_eq!(
            encode_event(&signal).map(|r| r.unwrap()).as_deref(),
            Some(r#"{"protocol":"one-to-all"}"#)
        );
        let taken = ServerMessage::Error {
            code: ErrorCode::NameTaken,
            message: "the name \"ann\" is taken".into(),
        };
        assert_eq!(
            encode_event(&taken).map(|r| r.unwrap()).as_deref(),
            Some("The username is taken")
        );
        assert!(encode_event(&ServerMessage::RoomStarted).is_none());
    }
}
