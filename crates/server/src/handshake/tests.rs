use super::*;

fn query(pairs: &[(&str, &str)]) -> ConnectQuery {
    let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    serde_urlencoded::from_str(&text.join("&")).unwrap()
}

fn refusal(room: Option<&str>, q: ConnectQuery, protocols: &[&str]) -> ErrorCode {
    negotiate(room, &q, protocols.iter().copied(), 1024)
        .unwrap_err()
        .error
        .code
}

fn entry(room: Option<&str>, pairs: &[(&str, &str)]) -> Entry {
    negotiate(room, &query(pairs), [], 1024).unwrap().entry
}

#[test]
fn defaults_to_json_v1_and_a_named_room_that_may_be_created() {
    let hs = negotiate(Some("lobby"), &ConnectQuery::default(), [], 1024).unwrap();
    assert_eq!(
        (hs.encoding, hs.subprotocol, hs.name, hs.resumable),
        (Encoding::Json, None, None, false)
    );
    assert_eq!(
        hs.entry,
        Entry::Join(Destination::Named {
            room: "lobby".into(),
            create: true,
            options: RoomOptions::default()
        })
    );
}

#[test]
fn reads_query_and_subprotocols() {
    let hs = negotiate(
        Some("r"),
        &query(&[("v", "1"), ("enc", "msgpack"), ("user", "ann")]),
        [],
        1024,
    )
    .unwrap();
    assert_eq!(
        (hs.encoding, hs.name.as_deref()),
        (Encoding::MsgPack, Some("ann"))
    );
    let hs = negotiate(
        Some("r"),
        &query(&[("enc", "json")]),
        ["chat", "switchboard.v1.msgpack"],
        1024,
    )
    .unwrap();
    assert_eq!(
        (hs.encoding, hs.subprotocol),
        (Encoding::MsgPack, Some("switchboard.v1.msgpack"))
    );
}

#[test]
fn refuses_what_it_does_not_speak() {
    assert_eq!(
        refusal(Some("r"), query(&[("v", "2")]), &[]),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(
        refusal(Some("r"), query(&[]), &["switchboard.v9.json"]),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(
        refusal(Some("r"), query(&[("enc", "xml")]), &[]),
        ErrorCode::UnsupportedEncoding
    );
    assert_eq!(
        refusal(Some("bad room"), query(&[]), &[]),
        ErrorCode::InvalidRoom
    );
    assert_eq!(
        refusal(Some("r"), query(&[("user", "a/b")]), &[]),
        ErrorCode::InvalidName
    );
    assert_eq!(refusal(None, query(&[]), &[]), ErrorCode::InvalidRoom);
}

#[test]
fn refusal_uses_the_requested_encoding_when_known() {
    let r = negotiate(Some("bad room"), &query(&[("enc", "msgpack")]), [], 1024).unwrap_err();
    assert_eq!(r.encoding, Encoding::MsgPack);
}

#[test]
fn room_options_when_creating() {
    let pairs = [
        ("topology", "star"),
        ("capacity", "4"),
        ("host_leaves", "close"),
        ("public", "true"),
        ("meta", r#"{"name":"x"}"#),
        ("create", "false"),
    ];
    let Entry::Join(Destination::Named {
        create, options, ..
    }) = entry(Some("r"), &pairs)
    else {
        panic!("a named room");
    };
    assert!(!create);
    assert_eq!(
        (
            options.topology,
            options.capacity,
            options.host_leaves,
            options.public
        ),
        (Topology::Star, Some(4), HostLeaves::Close, true)
    );
    assert!(options.meta.is_some());
    for bad in [
        ("topology", "ring"),
        ("capacity", "many"),
        ("host_leaves", "stay"),
        ("public", "yes"),
        ("meta", "[1]"),
        ("meta", "{"),
        ("resumable", "1"),
    ] {
        assert_eq!(
            refusal(Some("r"), query(&[bad]), &[]),
            ErrorCode::InvalidOptions,
            "{bad:?}"
        );
    }
    let big = format!(r#"{{"x":"{}"}}"#, "y".repeat(2000));
    assert_eq!(
        refusal(Some("r"), query(&[("meta", &big)]), &[]),
        ErrorCode::InvalidOptions
    );
}

#[test]
fn codes_sessions_matches_and_resumes() {
    assert_eq!(
        entry(None, &[("create", "code"), ("public", "true")]),
        Entry::Join(Destination::NewCode {
            options: RoomOptions {
                public: true,
                ..RoomOptions::default()
            }
        })
    );
    assert_eq!(
        entry(None, &[("create", "session")]),
        Entry::Join(Destination::NewSession)
    );
    assert_eq!(
        entry(None, &[("code", "k7p-x3q")]),
        Entry::Join(Destination::Named {
            room: "K7PX3Q".into(),
            create: false,
            options: RoomOptions::default()
        })
    );
    assert_eq!(
        refusal(None, query(&[("code", "0000")]), &[]),
        ErrorCode::NoSuchRoom
    );
    let session = "0123456789ABCDEF0123456789abcdef";
    let joined = Entry::Join(Destination::Named {
        room: session.to_ascii_lowercase(),
        create: false,
        options: RoomOptions::default(),
    });
    assert_eq!(entry(None, &[("session", session)]), joined);
    assert_eq!(
        entry(Some(session), &[]),
        joined,
        "32 hex digits never create a room by name"
    );
    assert_eq!(
        refusal(None, query(&[("session", "abc")]), &[]),
        ErrorCode::NoSuchRoom
    );
    assert_eq!(
        entry(None, &[("match", "4"), ("key", "ctf")]),
        Entry::Join(Destination::Match {
            players: 4,
            key: "ctf".into()
        })
    );
    assert_eq!(
        refusal(None, query(&[("match", "four")]), &[]),
        ErrorCode::InvalidOptions
    );
    assert_eq!(
        refusal(None, query(&[("match", "4"), ("key", "a b")]), &[]),
        ErrorCode::InvalidOptions
    );
    assert_eq!(
        entry(Some("r"), &[("resume", &format!("{:032x}", 42))]),
        Entry::Resume(42)
    );
    assert_eq!(
        refusal(Some("r"), query(&[("resume", "nope")]), &[]),
        ErrorCode::ResumeFailed
    );
    assert!(
        negotiate(Some("r"), &query(&[("resumable", "true")]), [], 1024)
            .unwrap()
            .resumable
    );
}
