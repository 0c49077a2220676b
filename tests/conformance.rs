//! RFC 6455 conformance: the Autobahn|Testsuite cases (through `kosoku`)
//! against the echo endpoint, compared case by case with the committed
//! expected results; a raw-socket matrix of protocol violations, each with
//! the close code it must get; and the opening handshake's refusals.
//! `docs/conformance.md` explains every result that is not plain OK.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use common::*;
use roomcast::seconds::Seconds;
use serde_json::Value;

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const FIN: u8 = 0x80;

/// The echo endpoint on limits large enough for the Autobahn performance
/// cases (16 MiB messages, a thousand messages back to back).
fn echo_for_autobahn(c: &mut roomcast::Config) {
    c.echo = true;
    c.ws.max_message_size = 16 << 20;
    c.ws.client_msg_rate = 1_000_000;
    c.ws.client_msg_burst = 1_000_000;
    c.ws.outbox_capacity = 100_000;
}

/// The echo endpoint on the production defaults.
fn echo_on_defaults(c: &mut roomcast::Config) {
    c.echo = true;
}

/// `(behavior, behaviorClose, remoteCloseCode)` per case id.
type Outcomes = BTreeMap<String, (String, String, Option<u64>)>;

/// Runs every Autobahn case but compression (sections 12 and 13) against
/// `url` with kosoku; returns the outcome of each case.
async fn run_autobahn(url: String) -> Outcomes {
    let dir = std::env::temp_dir().join(format!("roomcast-autobahn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = tokio::process::Command::new("kosoku")
        .args([&url, "-x", "12.*", "-x", "13.*", "-o"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(600), run)
        .await
        .expect("kosoku did not finish in 10 minutes")
        .expect("running kosoku (pip install kosoku; ./tests/run.sh installs it)");
    let index = std::fs::read(dir.join("index.json")).unwrap_or_else(|e| {
        panic!(
            "kosoku wrote no index.json ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    let index: Value = serde_json::from_slice(&index).expect("index.json is JSON");
    let agents = index.as_object().expect("index.json maps agents to cases");
    assert_eq!(agents.len(), 1, "one server under test");
    let cases = agents.values().next().unwrap().as_object().unwrap();
    cases
        .iter()
        .map(|(id, case)| {
            let text = |k: &str| case[k].as_str().unwrap_or("?").to_string();
            (
                id.clone(),
                (
                    text("behavior"),
                    text("behaviorClose"),
                    case["remoteCloseCode"].as_u64(),
                ),
            )
        })
        .collect()
}

/// The committed expectations in `tests/autobahn/<file>`.
fn expected(file: &str) -> Outcomes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/autobahn")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Fails with every case whose outcome differs from the expectation.
fn assert_outcomes(got: &Outcomes, want: &Outcomes) {
    let differences: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|id| got.get(*id) != want.get(*id))
        .map(|id| format!("{id}: expected {:?}, got {:?}", want.get(id), got.get(id)))
        .collect();
    assert!(
        differences.is_empty(),
        "{} Autobahn cases differ from tests/autobahn:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_cases_pass_with_no_failure_and_the_expected_non_strict_results() {
    let server = TestServer::start(echo_for_autobahn).await;
    let got = run_autobahn(server.ws_url("/v1/echo")).await;
    let failed: Vec<_> = got
        .iter()
        .filter(|(_, (b, c, _))| ["FAILED", "UNIMPLEMENTED"].contains(&b.as_str()) || c == "FAILED")
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:?}");
    assert!(got.len() > 290, "only {} cases ran", got.len());
    assert_outcomes(&got, &expected("expected.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_performance_cases_hit_the_default_limits_and_nothing_else_changes() {
    let server = TestServer::start(echo_on_defaults).await;
    let got = run_autobahn(server.ws_url("/v1/echo")).await;
    assert_outcomes(&got, &expected("expected-default-limits.json"));
}

/// A raw connection to the echo endpoint.
async fn echo(server: &TestServer) -> RawWs {
    RawWs::connect(server.addr, "/v1/echo").await
}

/// Sends `bytes` on a fresh echo connection; returns the close code it gets.
async fn close_code_for(server: &TestServer, bytes: &[u8]) -> u16 {
    let mut ws = echo(server).await;
    ws.send_raw(bytes).await;
    let code = ws.read_close_code().await;
    ws.expect_closed().await;
    code
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// A frame header announcing `len` with a 16- or 64-bit length field.
fn header_with_length(first: u8, length_field: &[u8]) -> Vec<u8> {
    let marker = if length_field.len() == 2 { 126 } else { 127 };
    let mut frame = vec![first, 0x80 | marker];
    frame.extend_from_slice(length_field);
    frame.extend_from_slice(&[0, 0, 0, 0]); // mask
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_violation_gets_its_close_code_and_bystanders_are_unaffected() {
    let server = TestServer::start(|c| {
        c.echo = true;
        c.ws.max_message_size = 1024;
    })
    .await;
    let mut bystander = server.connect_001().await;

    let mut unmasked = masked_frame(FIN | OP_TEXT, b"hi");
    unmasked[1] &= 0x7f;
    unmasked.drain(2..6);
    let mut fragmented_then_new_message = masked_frame(OP_TEXT, b"he");
    fragmented_then_new_message.extend(masked_frame(FIN | OP_TEXT, b"llo"));
    let mut long_fragments = masked_frame(OP_BINARY, &[0; 600]);
    long_fragments.extend(masked_frame(FIN | OP_CONT, &[0; 600]));
    let mut invalid_first_fragment = masked_frame(OP_TEXT, b"ok");
    invalid_first_fragment.extend(masked_frame(OP_CONT, &[0xc0, 0xaf]));
    let mut short_16 = header_with_length(FIN | OP_TEXT, &5u16.to_be_bytes());
    short_16.extend_from_slice(b"hello");

    let mut matrix: Vec<(String, Vec<u8>, u16)> = vec![
        (
            "RSV1 set".into(),
            masked_frame(FIN | 0x40 | OP_TEXT, b"x"),
            1002,
        ),
        (
            "RSV2 set".into(),
            masked_frame(FIN | 0x20 | OP_TEXT, b"x"),
            1002,
        ),
        (
            "RSV3 set".into(),
            masked_frame(FIN | 0x10 | OP_TEXT, b"x"),
            1002,
        ),
        ("unmasked frame".into(), unmasked, 1002),
        (
            "control frame of 126 bytes".into(),
            masked_frame(FIN | OP_PING, &[0; 126]),
            1002,
        ),
        ("fragmented ping".into(), masked_frame(OP_PING, b"p"), 1002),
        (
            "fragmented close".into(),
            masked_frame(OP_CLOSE, &close_payload(1000, b"")),
            1002,
        ),
        (
            "orphan continuation".into(),
            masked_frame(FIN | OP_CONT, b"x"),
            1002,
        ),
        (
            "new message inside a fragmented one".into(),
            fragmented_then_new_message,
            1002,
        ),
        (
            "64-bit length with its top bit set".into(),
            header_with_length(FIN | OP_BINARY, &(1u64 << 63 | 4).to_be_bytes()),
            1002,
        ),
        ("16-bit length for 5 bytes".into(), short_16, 1002),
        (
            "64-bit length for 300 bytes".into(),
            header_with_length(FIN | OP_BINARY, &300u64.to_be_bytes()),
            1002,
        ),
        (
            "frame over the size limit".into(),
            masked_frame(FIN | OP_BINARY, &[0; 2000]),
            1009,
        ),
        ("fragments over the size limit".into(), long_fragments, 1009),
        (
            "text that is not UTF-8".into(),
            masked_frame(FIN | OP_TEXT, &[0xff, 0xfe]),
            1007,
        ),
        (
            "a fragment that breaks UTF-8 (before the message ends)".into(),
            invalid_first_fragment,
            1007,
        ),
        (
            "close with a 1-byte payload".into(),
            masked_frame(FIN | OP_CLOSE, &[3]),
            1002,
        ),
        (
            "close with a reason that is not UTF-8".into(),
            masked_frame(
                FIN | OP_CLOSE,
                &close_payload(1000, &[0xce, 0xba, 0xe1, 0xbd]),
            ),
            1007,
        ),
    ];
    for opcode in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        matrix.push((
            format!("reserved opcode {opcode:#x}"),
            masked_frame(FIN | opcode, b""),
            1002,
        ));
    }
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        matrix.push((
            format!("close code {code}"),
            masked_frame(FIN | OP_CLOSE, &close_payload(code, b"")),
            1002,
        ));
    }
    for code in [1000, 1001, 1003, 1011, 3000, 4999] {
        matrix.push((
            format!("valid close code {code} (echoed as a normal close)"),
            masked_frame(FIN | OP_CLOSE, &close_payload(code, b"bye")),
            1000,
        ));
    }
    matrix.push((
        "empty close".into(),
        masked_frame(FIN | OP_CLOSE, b""),
        1000,
    ));

    let mut wrong = Vec::new();
    for (what, bytes, want) in &matrix {
        let got = close_code_for(&server, bytes).await;
        if got != *want {
            wrong.push(format!("{what}: expected {want}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    ping_pong(&mut bystander).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_stalls_halfway_is_closed_with_1008() {
    let server = TestServer::start(|c| {
        c.echo = true;
        c.ws.message_timeout = Seconds::from_secs_f64(0.3);
    })
    .await;
    let mut bystander = server.connect_001().await;
    let mut ws = echo(&server).await;
    let frame = masked_frame(FIN | OP_BINARY, &[7; 1000]);
    ws.send_raw(&frame[..500]).await;
    assert_eq!(ws.read_close_code().await, 1008);
    ws.expect_closed().await;
    ping_pong(&mut bystander).await;

    // A fragmented message must end in time too, pings between its fragments or not.
    let mut ws = echo(&server).await;
    ws.send_raw(&masked_frame(OP_TEXT, b"never")).await;
    loop {
        ws.send_raw(&masked_frame(FIN | OP_PING, b"")).await;
        let frame = ws.read_frame().await;
        if frame.opcode == OP_CLOSE {
            assert_eq!(
                u16::from_be_bytes([frame.payload[0], frame.payload[1]]),
                1008
            );
            break;
        }
        assert_eq!(frame.opcode, OP_PONG);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_between_messages_is_not_timed_out() {
    let server = TestServer::start(|c| {
        c.echo = true;
        c.ws.message_timeout = Seconds::from_secs_f64(0.2);
    })
    .await;
    let mut ws = echo(&server).await;
    // Longer than the message timeout, measured by the server's own clock:
    // a second connection's half frame is closed meanwhile.
    let mut other = echo(&server).await;
    other
        .send_raw(&masked_frame(FIN | OP_TEXT, b"half")[..3])
        .await;
    assert_eq!(other.read_close_code().await, 1008);
    ws.send_raw(&masked_frame(FIN | OP_TEXT, b"still here"))
        .await;
    let echoed = ws.read_frame().await;
    assert_eq!(
        (echoed.opcode, &echoed.payload[..]),
        (OP_TEXT, &b"still here"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_returns_text_as_text_and_binary_as_binary() {
    let server = TestServer::start(echo_on_defaults).await;
    let mut ws = echo(&server).await;
    ws.send_frame(OP_TEXT, "héllo".as_bytes()).await;
    let text = ws.read_frame().await;
    assert_eq!(
        (text.opcode, &text.payload[..]),
        (OP_TEXT, "héllo".as_bytes())
    );
    ws.send_frame_fin(false, OP_BINARY, &[1, 2]).await;
    ws.send_frame_fin(true, OP_CONT, &[3]).await;
    let binary = ws.read_frame().await;
    assert_eq!(
        (binary.opcode, &binary.payload[..]),
        (OP_BINARY, &[1u8, 2, 3][..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_endpoint_is_off_by_default() {
    let server = TestServer::start(|_| {}).await;
    let (status, body) = server.http_get("/v1/echo").await;
    assert_eq!(status, hyper::StatusCode::NOT_FOUND, "{body}");
}

/// A hand-written upgrade request for `/api/ws` with `headers` (each `Name: value\r\n`).
fn upgrade_request(version: &str, headers: &str) -> Vec<u8> {
    format!(
        "GET /api/ws {version}\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{headers}\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refusals_name_the_problem_and_close_the_connection() {
    let server = TestServer::start(|_| {}).await;
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let v13 = "Sec-WebSocket-Version: 13\r\n";
    let eighteen_bytes = "Sec-WebSocket-Key: BwcHBwcHBwcHBwcHBwcHBwcH\r\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "version 8",
            upgrade_request("HTTP/1.1", &format!("{key}Sec-WebSocket-Version: 8\r\n")),
            "426",
        ),
        ("no version", upgrade_request("HTTP/1.1", key), "426"),
        (
            "a key that is not base64",
            upgrade_request(
                "HTTP/1.1",
                &format!("Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!\r\n{v13}"),
            ),
            "400",
        ),
        (
            "the base64 of 18 bytes",
            upgrade_request("HTTP/1.1", &format!("{eighteen_bytes}{v13}")),
            "400",
        ),
        (
            "two keys",
            upgrade_request("HTTP/1.1", &format!("{key}{key}{v13}")),
            "400",
        ),
        (
            "HTTP/1.0",
            upgrade_request("HTTP/1.0", &format!("{key}{v13}")),
            "400",
        ),
    ];
    for (what, request, status) in cases {
        // The server answers and closes: read_until_closed returns only then.
        let response = raw_http(server.addr, &request).await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}"))
                || response.starts_with(&format!("HTTP/1.0 {status}")),
            "{what}: {response}"
        );
        assert!(!response.contains(" 101 "), "{what}: {response}");
        assert!(response.contains("\"error\""), "{what}: {response}");
        if status == "426" {
            assert!(
                response
                    .to_ascii_lowercase()
                    .contains("sec-websocket-version: 13"),
                "{what}: {response}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_gets_405_with_allow() {
    let server = TestServer::start(|_| {}).await;
    for (method, path, allow) in [
        ("DELETE", "/health", "GET"),
        ("PUT", "/api/alerts", "POST, GET"),
        ("GET", "/api/ws/broadcast/price", "POST"),
        ("POST", "/api/alerts/7", "DELETE"),
    ] {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let response = raw_http(server.addr, request.as_bytes()).await;
        assert!(
            response.starts_with("HTTP/1.1 405"),
            "{method} {path}: {response}"
        );
        let lower = response.to_ascii_lowercase();
        assert!(
            lower.contains(&format!("allow: {}", allow.to_ascii_lowercase())),
            "{method} {path}: {response}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pongs_and_pings_within_the_control_budget_are_answered() {
    let server = TestServer::start(echo_on_defaults).await;
    let mut ws = echo(&server).await;
    // An unsolicited pong is allowed and ignored (RFC 6455 §5.5.3).
    ws.send_frame(OP_PONG, b"unsolicited").await;
    ws.send_frame(OP_PING, b"abc").await;
    let pong = ws.read_frame().await;
    assert_eq!((pong.opcode, &pong.payload[..]), (OP_PONG, &b"abc"[..]));
}
