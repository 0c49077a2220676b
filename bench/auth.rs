//! What authentication costs per WebSocket upgrade and per join: verifying
//! one JWT (`Authenticator::verify`: header, signature, claims, grant) for
//! HS256, RS256 (2048-bit) and ES256 (P-256), and one room-grant check of a
//! join against a ten-pattern rooms claim. Keys come from the `openssl`
//! command; tokens are signed once, outside the timed loops.
//!
//!     cargo bench --bench auth

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use roomcast::auth::grant::RoomGrant;
use roomcast::auth::{AuthMode, Authenticator};
use serde_json::json;

const SECRET: &str = "bench-secret-0123456789-abcdefghijklmnop";

fn main() {
    let dir = std::env::temp_dir().join(format!("roomcast-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rooms = json!([
        "ticker:A*",
        "ticker:MSFT",
        "market_status",
        "patterns",
        "alerts",
        "s004:*",
        "s003:live*",
        "backtest:run-*",
        "modeldata*",
        "topic:desk-?"
    ]);
    let claims = json!({ "sub": "bench-user", "exp": 4_000_000_000u64, "rooms": rooms });

    let mut settings = roomcast::Config::default().auth;
    settings.mode = AuthMode::Required;
    settings.secret = Some(SECRET.parse().unwrap());
    let hs = Authenticator::new(settings.clone());
    let hs_token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    report("HS256 verify", || {
        black_box(hs.verify(black_box(&hs_token)).unwrap());
    });

    for (name, alg, genpkey) in [
        (
            "RS256 verify (2048-bit)",
            Algorithm::RS256,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
        (
            "ES256 verify (P-256)",
            Algorithm::ES256,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
        ),
    ] {
        let (private, public) = openssl_pair(&dir, genpkey);
        let public_file = dir.join(format!("{alg:?}.pub"));
        std::fs::write(&public_file, public).unwrap();
        let mut s = settings.clone();
        s.secret = None;
        s.public_key = Some(public_file);
        let auth = Authenticator::new(s);
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&private).unwrap(),
            _ => EncodingKey::from_ec_pem(&private).unwrap(),
        };
        let token = encode(&Header::new(alg), &claims, &key).unwrap();
        report(name, || {
            black_box(auth.verify(black_box(&token)).unwrap());
        });
    }

    let grant = RoomGrant::from_claim(Some(&rooms)).unwrap();
    report("grant check, 10 patterns, last one matches", || {
        assert!(grant.allows(black_box("topic:desk-7")));
    });
    report("grant check, 10 patterns, none matches", || {
        assert!(!grant.allows(black_box("ticker:ZZZZ")));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `f` for about a second after a warm-up; prints the best of five
/// rounds' mean per call.
fn report(name: &str, mut f: impl FnMut()) {
    let mut per_call = Duration::MAX;
    for round in 0..6 {
        let started = Instant::now();
        let mut calls = 0u32;
        while started.elapsed() < Duration::from_millis(200) {
            f();
            calls += 1;
        }
        if round > 0 {
            per_call = per_call.min(started.elapsed() / calls);
        }
    }
    println!("{name:<45} {per_call:>10.2?} per call");
}

fn openssl_pair(dir: &std::path::Path, genpkey: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let private = dir.join("key.pem");
    let public = dir.join("key.pub");
    assert!(
        Command::new("openssl")
            .arg("genpkey")
            .args(genpkey)
            .arg("-out")
            .arg(&private)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success()
    );
    (
        std::fs::read(private).unwrap(),
        std::fs::read(public).unwrap(),
    )
}
