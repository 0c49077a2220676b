//! Fuzzes token handling (`roomcast::auth`): whole tokens through
//! `Authenticator::verify`, room grants through `RoomGrant`, and upgrade
//! requests through `credentials::presented`. Invariants:
//!
//! * nothing panics, whatever the bytes;
//! * a token is accepted only if its signature is the HMAC-SHA256 of its
//!   first two parts under the configured secret (checked here with our
//!   own HMAC), its header says HS256, and it carries a numeric `exp`; a
//!   token signed here and then mutated is accepted only if the mutation
//!   left it unchanged;
//! * a grant's answer equals an independent, recursive glob matcher's;
//! * a token found in `Authorization: Bearer` is that header's trimmed value.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use roomcast::auth::credentials::presented;
use roomcast::auth::grant::RoomGrant;
use roomcast::auth::{AuthMode, Authenticator};
use sha2::Sha256;
use std::sync::{Arc, OnceLock};

const SECRET: &[u8] = b"fuzz-secret-0123456789-abcdefghijklmno";

#[derive(Debug, Arbitrary)]
enum Input {
    /// Raw bytes as a token.
    Raw(String),
    /// Claims signed with the real secret, then one byte changed.
    Signed {
        sub: Option<String>,
        exp_offset: i32,
        nbf_offset: Option<i16>,
        rooms: Option<Vec<String>>,
        flip_at: u16,
        flip_to: u8,
    },
    /// A rooms pattern against a room name.
    Glob { pattern: String, room: String },
    /// An upgrade's credentials.
    Request {
        authorization: Option<String>,
        protocol: Option<String>,
        query: String,
    },
}

fn authenticator() -> &'static Arc<Authenticator> {
    static AUTH: OnceLock<Arc<Authenticator>> = OnceLock::new();
    AUTH.get_or_init(|| {
        let mut settings = roomcast::Config::default().auth;
        settings.mode = AuthMode::Required;
        settings.secret = Some(std::str::from_utf8(SECRET).unwrap().parse().unwrap());
        Authenticator::new(settings)
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Our own check of an HS256 signature.
fn signed_by_secret(token: &str) -> bool {
    let Some((input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(input.as_bytes());
    let want = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    want == signature
}

fn check_token(token: &str) {
    if let Ok(identity) = authenticator().verify(token) {
        assert!(
            signed_by_secret(token),
            "accepted a token the secret did not sign"
        );
        let header = jsonwebtoken::decode_header(token).expect("an accepted token has a header");
        assert_eq!(header.alg, Algorithm::HS256, "accepted another algorithm");
        assert!(
            identity.expires_at.is_some(),
            "accepted a token without exp"
        );
    }
}

/// The reference matcher: plain recursion over characters.
fn reference_glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| reference_glob(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && reference_glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && reference_glob(rest, &text[1..]),
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(token) => check_token(&token),
        Input::Signed {
            sub,
            exp_offset,
            nbf_offset,
            rooms,
            flip_at,
            flip_to,
        } => {
            let mut claims = serde_json::json!({ "exp": now() + i64::from(exp_offset) });
            if let Some(sub) = sub {
                claims["sub"] = sub.into();
            }
            if let Some(nbf) = nbf_offset {
                claims["nbf"] = (now() + i64::from(nbf)).into();
            }
            if let Some(rooms) = rooms {
                claims["rooms"] = rooms.into();
            }
            let key = EncodingKey::from_secret(SECRET).unwrap();
            let token =
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
            check_token(&token);
            let mut bytes = token.clone().into_bytes();
            let at = usize::from(flip_at) % bytes.len();
            bytes[at] = flip_to;
            if let Ok(mutated) = String::from_utf8(bytes) {
                check_token(&mutated);
                if mutated != token {
                    assert!(
                        authenticator().verify(&mutated).is_err() || signed_by_secret(&mutated),
                        "a mutated token was accepted"
                    );
                }
            }
        }
        Input::Glob { pattern, room } => {
            if pattern.is_empty() || pattern.len() > 64 || room.len() > 64 {
                return;
            }
            let grant = RoomGrant::from_claim(Some(&serde_json::json!([pattern]))).unwrap();
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = room.chars().collect();
            assert_eq!(
                grant.allows(&room),
                reference_glob(&p, &t),
                "glob {pattern:?} on {room:?}"
            );
        }
        Input::Request {
            authorization,
            protocol,
            query,
        } => {
            let mut builder =
                http::Request::get(format!("/v1/ws?{}", query.replace(['#', ' '], "")));
            if let Some(a) = &authorization {
                builder = builder.header("authorization", a.as_str());
            }
            if let Some(p) = &protocol {
                builder = builder.header("sec-websocket-protocol", p.as_str());
            }
            let Ok(request) = builder.body(()) else {
                return;
            };
            if let Ok(Some(found)) = presented(&request, Some("roomcast.v1"))
                && let Some(a) = request.headers().get("authorization")
            {
                let a = a.to_str().expect("a readable Authorization was used");
                assert_eq!(
                    found.token,
                    a.split_once(' ').unwrap().1.trim(),
                    "token differs from the header"
                );
            }
        }
    }
});
