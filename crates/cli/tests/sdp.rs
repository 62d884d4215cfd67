//! `switchboard sdp` as a user runs it: the real binary on the shared compact SDP vectors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/compact-sdp.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sdp(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("sdp")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn encode_and_decode_give_the_vectors_codes_and_sdp() {
    for vector in vectors()["valid"].as_array().unwrap() {
        let input = vector["sdp"].as_str().unwrap();
        let url = stdout(&sdp(&["encode"], input));
        assert_eq!(url.trim_end(), vector["url"]);
        let qr = stdout(&sdp(&["encode", "--form", "qr"], input));
        assert_eq!(qr.trim_end_matches('\n'), vector["qr"]);
        let hex = stdout(&sdp(&["encode", "--form", "hex"], input));
        assert_eq!(hex.trim_end(), vector["hex"]);
        for code in [
            vector["url"].as_str().unwrap(),
            vector["qr"].as_str().unwrap(),
            vector["hex"].as_str().unwrap(),
        ] {
            assert_eq!(stdout(&sdp(&["decode", code], "")), vector["rebuilt_sdp"]);
        }
        let link = format!(
            "http://192.0.2.1:8080/demo/pair#{}",
            vector["url"].as_str().unwrap()
        );
        assert_eq!(stdout(&sdp(&["decode"], &link)), vector["rebuilt_sdp"]);
    }
}

#[test]
fn the_encoder_reports_sizes() {
    let vector = &vectors()["valid"][0];
    let output = sdp(&["encode"], vector["sdp"].as_str().unwrap());
    let report = String::from_utf8(output.stderr).unwrap();
    assert!(
        report.contains("685 bytes of SDP -> 76 bytes compact"),
        "{report}"
    );
}

#[test]
fn qr_codes_in_the_terminal_svg_and_png() {
    let vector = &vectors()["valid"][0];
    let input = vector["sdp"].as_str().unwrap();
    let terminal = sdp(&["qr"], input);
    let report = String::from_utf8_lossy(&terminal.stderr).into_owned();
    assert!(
        report.contains("114 characters -> QR version 4"),
        "{report}"
    );
    assert!(stdout(&terminal).lines().count() > 15);
    let dir = std::env::temp_dir().join(format!("switchboard-qr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (svg, png) = (dir.join("code.svg"), dir.join("code.png"));
    let output = sdp(
        &[
            "qr",
            "--link",
            "http://192.0.2.1:8080/demo/pair",
            "--svg",
            svg.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ],
        vector["url"].as_str().unwrap(),
    );
    assert!(output.status.success());
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_exits_2_with_a_reason() {
    let vector = &vectors()["valid"][0];
    let url = vector["url"].as_str().unwrap();
    let mut corrupted = url.to_owned();
    corrupted.replace_range(10..11, if &url[10..11] == "A" { "B" } else { "A" });
    let cases = [
        (vec!["decode", "garbage"], "", "not a valid code"),
        (vec!["decode", &corrupted], "", "checksum mismatch"),
        (vec!["decode", &url[..30]], "", "not a valid code"),
        (
            vec!["encode"],
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
            "not a data-channel-only SDP",
        ),
        (vec!["encode"], "", "no m=application"),
    ];
    for (args, stdin, reason) in cases {
        let output = sdp(&args, stdin);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}
