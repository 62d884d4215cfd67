//! The built-in STUN server against a real STUN client we did not write (coturn's
//! `turnutils_stunclient`), and against hostile datagrams.

mod common;

use std::net::{SocketAddr, UdpSocket};

use std::process::Command;
use std::time::Duration;

use common::*;
use switchboard_stun::{
    binding_request, decode_xor_mapped_address, parse, Class, XOR_MAPPED_ADDRESS,
};

/// Runs `turnutils_stunclient` against `server` and returns the reflexive address it reports.
fn stunclient_mapped_address(server: SocketAddr) -> String {
    let output = Command::new("turnutils_stunclient")
        .args(["-p", &server.port().to_string(), &server.ip().to_string()])
        .output()
        .expect("turnutils_stunclient runs (Debian package coturn; scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let line = stdout
        .lines()
        .find(|l| l.contains("UDP reflexive addr"))
        .unwrap_or_else(|| {
            panic!("no reflexive address in turnutils_stunclient output:\n{stdout}")
        });
    line.rsplit_once("addr:")
        .map(|(_, a)| a.trim().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn coturn_client_gets_its_address_over_ipv4_and_ipv6() {
    let mut config = config();
    config.stun.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
    let server = start(config).await;
    let [v4, v6] = server.stun_addrs() else {
        panic!("two STUN addresses")
    };
    let (v4, v6) = (*v4, *v6);
    let mapped = tokio::task::spawn_blocking(move || {
        (stunclient_mapped_address(v4), stunclient_mapped_address(v6))
    })
    .await
    .unwrap();
    // turnutils_stunclient prints `IP:port`, IPv6 without brackets.
    let split = |printed: &str| -> (std::net::IpAddr, u16) {
        let (ip, port) = printed
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("an address: {printed:?}"));
        (ip.parse().unwrap(), port.parse().unwrap())
    };
    let (ip4, port4) = split(&mapped.0);
    let (ip6, port6) = split(&mapped.1);
    assert_eq!(ip4, "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(ip6, "::1".parse::<std::net::IpAddr>().unwrap());
    assert!(port4 != 0 && port6 != 0);
    server.shutdown().await;
}

/// Sends a Binding request from `socket` and returns the mapped address in the answer.
fn ask(socket: &UdpSocket, server: SocketAddr, transaction_id: [u8; 12]) -> Option<SocketAddr> {
    let mut request = [0u8; 28];
    let n = binding_request(transaction_id, true, &mut request);
    socket.send_to(&request[..n], server).ok()?;
    let mut buf = [0u8; 512];
    loop {
        let (len, _) = socket.recv_from(&mut buf).ok()?;
        let parsed = parse(&buf[..len]).ok()?;
        if parsed.header.transaction_id == transaction_id
            && parsed.header.class == Class::SuccessResponse
        {
            return decode_xor_mapped_address(
                parsed.attribute(XOR_MAPPED_ADDRESS)?,
                &transaction_id,
            );
        }
    }
}

#[tokio::test]
async fn hostile_datagrams_are_dropped_and_others_still_served() {
    let server = start(config()).await;
    let stun = server.stun_addrs()[0];
    let addr = server.local_addr();
    tokio::task::spawn_blocking(move || {
        let honest = UdpSocket::bind("127.0.0.1:0").unwrap();
        honest
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
        attacker
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert_eq!(
            ask(&honest, stun, [1; 12]),
            Some(honest.local_addr().unwrap())
        );

        let mut valid = [0u8; 28];
        let n = binding_request([2; 12], true, &mut valid);
        let mut wrong_cookie = valid;
        wrong_cookie[4] = 0;
        let mut huge_attribute = valid[..n].to_vec();
        huge_attribute.extend_from_slice(&[0x80, 0x22, 0xff, 0xff]);
        huge_attribute[3] = 12;
        let mut bad_fingerprint = valid;
        bad_fingerprint[n - 1] ^= 0xff;
        let hostile: Vec<Vec<u8>> = vec![
            vec![],
            vec![0; 1],
            valid[..19].to_vec(),
            valid[..n - 4].to_vec(),
            wrong_cookie[..n].to_vec(),
            huge_attribute,
            bad_fingerprint[..n].to_vec(),
            vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // DTLS-looking
            (0..1500u32).map(|i| (i * 7919 % 251) as u8).collect(),
            vec![0xff; 65_000],
        ];
        for _ in 0..20 {
            for datagram in &hostile {
                let _ = attacker.send_to(datagram, stun);
            }
        }
        // None of it is answered...
        let mut buf = [0u8; 512];
        assert!(
            attacker.recv_from(&mut buf).is_err(),
            "hostile datagrams get no answer"
        );
        // ...and the honest client is still served.
        for i in 0..50u8 {
            assert_eq!(
                ask(&honest, stun, [i; 12]),
                Some(honest.local_addr().unwrap())
            );
        }
    })
    .await
    .unwrap();

    // The counters saw it all (workers add their counts when idle for 100 ms).
    let expected = [
        ("switchboard_stun_answered_total", 51),
        // UDP may drop some of the flood when the socket buffer is full; most arrive.
        ("switchboard_stun_dropped_not_stun_total", 20),
        ("switchboard_stun_dropped_malformed_total", 10),
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, metrics) = http_get(addr, "/metrics").await;
        let value = |name: &str| -> u64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
        };
        if expected
            .iter()
            .all(|(name, at_least)| value(name) >= *at_least)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "STUN counters never reached {expected:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn welcome_points_clients_at_the_built_in_stun_server() {
    let server = start(config()).await;
    let stun = server.stun_addrs()[0];
    let client = Client::join(server.local_addr(), "ice", "").await;
    let urls: Vec<String> = client
        .welcome
        .ice_servers
        .iter()
        .flat_map(|s| s.urls.clone())
        .collect();
    assert_eq!(urls, vec![format!("stun:127.0.0.1:{}", stun.port())]);
    server.shutdown().await;

    let mut config = config();
    config.ice_servers = vec![switchboard_server::IceServer {
        urls: vec!["turn:turn.example.test:3478".into()],
        username: Some("u".into()),
        credential: Some("p".into()),
    }];
    let server = start(config).await;
    let client = Client::join(server.local_addr(), "ice", "").await;
    assert_eq!(
        client.welcome.ice_servers[0].urls,
        vec!["turn:turn.example.test:3478".to_owned()]
    );
    server.shutdown().await;
}
