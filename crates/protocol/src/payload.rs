//! Opaque application data carried by `message` and `signal`.

use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Application data the hub relays without looking inside: a WebRTC offer, an ICE candidate,
/// a chat line, a game state delta.
///
/// A payload keeps the form it arrived in, so relaying between two peers of the same encoding
/// copies bytes and never rebuilds a tree. Between encodings it is converted: JSON values map to
/// their MessagePack equivalents; MessagePack `bin` becomes an array of byte values in JSON, map
/// keys that are numbers or booleans become strings, and a map with any other non-string key
/// (nil, bin, an array, a map) cannot be sent to a JSON peer.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Received from (or built for) a JSON connection: the exact JSON text.
    Json(Box<RawValue>),
    /// Received from (or built for) a MessagePack connection: the decoded value.
    MsgPack(rmpv::Value),
}

impl Payload {
    /// A payload from a JSON text, checked to be valid JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text.to_owned()).map(Self::Json)
    }

    /// This payload as a MessagePack value, converting from JSON when needed.
    pub fn to_msgpack_value(&self) -> Result<rmpv::Value, serde_json::Error> {
        match self {
            Self::Json(raw) => serde_json::from_str(raw.get()),
            Self::MsgPack(value) => Ok(value.clone()),
        }
    }

    /// This payload as JSON text, converting from MessagePack when possible.
    pub fn to_json_string(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Json(raw) => Ok(raw.get().to_owned()),
            Self::MsgPack(value) => serde_json::to_string(value),
        }
    }
}

/// Two payloads are equal when they denote the same MessagePack value, whatever their form.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (self.to_msgpack_value(), other.to_msgpack_value()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // serde_json writes a RawValue verbatim; other formats would see a wrapper struct.
            Self::Json(raw) if serializer.is_human_readable() => raw.serialize(serializer),
            Self::Json(raw) => serde_json::from_str::<rmpv::Value>(raw.get())
                .map_err(S::Error::custom)?
                .serialize(serializer),
            Self::MsgPack(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            // Only serde_json can produce a RawValue; that is the one human-readable format here.
            // The error is passed on as it is: serde_json's category tells a frame that is not
            // JSON at all (`malformed`) from a valid one of the wrong shape (`invalid_message`).
            Box::<RawValue>::deserialize(deserializer).map(Self::Json)
        } else {
            rmpv::Value::deserialize(deserializer).map(Self::MsgPack)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_msgpack_forms_compare_by_value() {
        let json = Payload::from_json(r#"{"x":1,"s":"hi","l":[true,null]}"#).unwrap();
        let mp = Payload::MsgPack(json.to_msgpack_value().unwrap());
        assert_eq!(json, mp);
        assert_ne!(json, Payload::from_json("2").unwrap());
    }

    #[test]
    fn binary_becomes_byte_array_in_json() {
        let mp = Payload::MsgPack(rmpv::Value::Binary(vec![1, 2, 255]));
        assert_eq!(mp.to_json_string().unwrap(), "[1,2,255]");
    }

    #[test]
    fn map_keys_become_json_strings_when_they_are_scalars_and_fail_otherwise() {
        let map = |key| Payload::MsgPack(rmpv::Value::Map(vec![(key, rmpv::Value::Nil)]));
        for (key, json) in [
            (rmpv::Value::from("k"), r#"{"k":null}"#),
            (rmpv::Value::from(7), r#"{"7":null}"#),
            (rmpv::Value::from(-1.5), r#"{"-1.5":null}"#),
            (rmpv::Value::from(true), r#"{"true":null}"#),
        ] {
            assert_eq!(map(key).to_json_string().unwrap(), json);
        }
        for key in [
            rmpv::Value::Nil,
            rmpv::Value::Binary(vec![0]),
            rmpv::Value::Array(vec![]),
            rmpv::Value::Map(vec![]),
        ] {
            assert!(map(key.clone()).to_json_string().is_err(), "{key}");
        }
    }
}
