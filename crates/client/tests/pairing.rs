//! Pairing by compact codes, no server at all: two native clients connect with only the codes
//! carried between them, talk on both channels, and refuse bad codes clearly.

use std::time::Duration;

use switchboard_client::{
    ConnectOptions, Connection, ConnectionEvent, Data, PairingAnswer, PairingOffer, Transport,
};

const WAIT: Duration = Duration::from_secs(20);

async fn next(connection: &mut Connection, what: &str) -> ConnectionEvent {
    tokio::time::timeout(WAIT, connection.next_event())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("events ended before {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_clients_pair_with_codes_only() {
    let offer = PairingOffer::create(ConnectOptions::default())
        .await
        .expect("an offer");
    let offer_code = offer.code().clone();
    eprintln!("offer {} B: {}", offer_code.bytes(), offer_code.code());
    // 62 bytes of fixed fields with str0m's credentials, 7 per IPv4 host candidate.
    assert!(
        offer_code.bytes() <= 62 + 7 * 10,
        "{} B",
        offer_code.bytes()
    );
    // The other side reads the link form.
    let answer = PairingAnswer::answer(
        &offer_code.link("http://192.168.1.20:8080/demo/pair"),
        ConnectOptions::default(),
    )
    .await
    .expect("an answer");
    let answer_code = answer.code().clone();
    // The QR text form back.
    let mut a = tokio::time::timeout(WAIT, offer.accept(answer_code.qr_text()))
        .await
        .expect("in time")
        .expect("a connects");
    let mut b = tokio::time::timeout(WAIT, answer.connected())
        .await
        .expect("in time")
        .expect("b connects");
    assert_eq!(a.transport(), Transport::WebRtc);
    assert_eq!(a.id(), None);

    for i in 0..50 {
        a.send("reliable", format!("a{i}")).expect("sent");
    }
    a.send("reliable", vec![7u8; 1024 * 1024]).expect("sent");
    for i in 0..10 {
        b.send("unreliable", vec![i]).expect("sent");
    }
    let mut texts = Vec::new();
    while texts.len() < 51 {
        match next(&mut b, "a's messages").await {
            ConnectionEvent::Message { channel, data } => {
                assert_eq!(channel, "reliable");
                texts.push(data);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    for (i, data) in texts.iter().take(50).enumerate() {
        assert_eq!(data, &Data::Text(format!("a{i}")));
    }
    assert_eq!(texts[50], Data::Binary(vec![7u8; 1024 * 1024]));
    match next(&mut a, "b's unreliable messages").await {
        ConnectionEvent::Message { channel, data } => {
            assert_eq!(channel, "unreliable");
            assert!(
                matches!(data, Data::Binary(ref d) if d.len() == 1),
                "{data:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    // a closes: b hears a goodbye.
    a.close();
    let code = loop {
        match next(&mut b, "a's close").await {
            ConnectionEvent::Closed { code, .. } => break code,
            ConnectionEvent::Message { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, "goodbye");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_codes_are_refused_clearly() {
    let options = ConnectOptions::default;
    let garbage = PairingAnswer::answer("definitely not a code", options()).await;
    assert_eq!(garbage.err().map(|e| e.code), Some("invalid_code".into()));
    let offer = PairingOffer::create(options()).await.expect("an offer");
    let code = offer.code().code().to_owned();
    // One character changed: the checksum catches it.
    let mut corrupted: Vec<char> = code.chars().collect();
    corrupted[20] = if corrupted[20] == 'A' { 'B' } else { 'A' };
    let corrupted: String = corrupted.into_iter().collect();
    let refused = PairingAnswer::answer(&corrupted, options()).await;
    let error = refused.err().expect("refused");
    assert_eq!(error.code, "invalid_code");
    assert!(error.message.contains("checksum"), "{error}");
    // An offer where an answer is expected.
    let another = PairingOffer::create(options()).await.expect("an offer");
    let wrong = offer.accept(another.code().code()).await;
    let error = wrong.err().expect("refused");
    assert_eq!(error.code, "invalid_code");
    assert!(error.message.contains("answer"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_never_comes_back_times_out() {
    let offer = PairingOffer::create(ConnectOptions::default())
        .await
        .expect("an offer");
    // The answerer's connection waits for checks from an offerer that is gone.
    let quick = ConnectOptions {
        connect_timeout: Duration::from_millis(800),
        ..ConnectOptions::default()
    };
    let answer = PairingAnswer::answer(offer.code().code(), quick)
        .await
        .expect("an answer");
    drop(offer);
    let failed = tokio::time::timeout(WAIT, answer.connected())
        .await
        .expect("in time");
    assert_eq!(
        failed.err().map(|e| e.code),
        Some("connection_failed".into())
    );
}
