//! Where a WebSocket upgrade carries its token: `Authorization: Bearer`, a
//! `Sec-WebSocket-Protocol` entry `bearer.<token>` (the one header a
//! browser's `new WebSocket(url, protocols)` can set), or the `?token=`
//! query parameter the seeds reserve. Read before the upgrade, so a refusal
//! is an HTTP answer.

use hyper::Request;
use hyper::header::{AUTHORIZATION, HeaderValue, SEC_WEBSOCKET_PROTOCOL};

/// Prefix of the subprotocol entry that carries a token.
pub const PROTOCOL_PREFIX: &str = "bearer.";

/// A token found in an upgrade request.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    /// The token.
    pub token: String,
    /// The `Sec-WebSocket-Protocol` to answer with, when the token came as a
    /// subprotocol (a browser fails the connection unless one it offered is
    /// selected).
    pub protocol: Option<HeaderValue>,
}

/// Why the credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// `Authorization` is present but not `Bearer <token>`.
    #[error("Authorization must be 'Bearer <token>'")]
    NotBearer,
    /// Two places carry different tokens.
    #[error("the request carries two different tokens")]
    Conflicting,
}

/// The token `req` presents, if any. `spoken` is the subprotocol the
/// endpoint speaks (the native protocol's `roomcast.v1`): selected when the
/// client offers it beside its token entry, so the token is not echoed back.
pub fn presented<B>(
    req: &Request<B>,
    spoken: Option<&str>,
) -> Result<Option<Presented>, CredentialsError> {
    let mut found: Option<Presented> = None;
    let mut offer = |token: String, protocol: Option<HeaderValue>| match &mut found {
        Some(p) if p.token != token => Err(CredentialsError::Conflicting),
        Some(p) => {
            p.protocol = p.protocol.take().or(protocol);
            Ok(())
        }
        None => {
            found = Some(Presented { token, protocol });
            Ok(())
        }
    };
    if let Some(value) = req.headers().get(AUTHORIZATION) {
        let token = crate::http::response::bearer(value)
            .and_then(|t| std::str::from_utf8(t).ok())
            .ok_or(CredentialsError::NotBearer)?;
        offer(token.to_string(), None)?;
    }
    let offered: Vec<&str> = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if let Some(entry) = offered.iter().find(|p| p.starts_with(PROTOCOL_PREFIX)) {
        let answer = match spoken {
            Some(spoken) if offered.contains(&spoken) => spoken,
            _ => entry,
        };
        let token = entry[PROTOCOL_PREFIX.len()..].to_string();
        offer(token, HeaderValue::from_str(answer).ok())?;
    }
    if let Some(token) = crate::http::response::query_param(req, "token") {
        offer(token, None)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented_native(req: &Request<()>) -> Result<Option<Presented>, CredentialsError> {
        presented(req, Some("roomcast.v1"))
    }

    fn request(headers: &[(&str, &str)], query: &str) -> Request<()> {
        let mut builder = Request::get(format!("/v1/ws{query}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn tokens_are_read_from_each_place() {
        assert_eq!(presented_native(&request(&[], "")).unwrap(), None);
        let p = presented_native(&request(&[("authorization", "Bearer abc.def.ghi")], ""))
            .unwrap()
            .unwrap();
        assert_eq!((p.token.as_str(), p.protocol), ("abc.def.ghi", None));
        let p = presented_native(&request(&[], "?user_id=u&token=abc.def.ghi"))
            .unwrap()
            .unwrap();
        assert_eq!(p.token, "abc.def.ghi");
        let p = presented_native(&request(
            &[("sec-websocket-protocol", "bearer.abc.def.ghi")],
            "",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(p.token, "abc.def.ghi");
        assert_eq!(p.protocol.unwrap(), "bearer.abc.def.ghi");
        let p = presented_native(&request(
            &[("sec-websocket-protocol", "roomcast.v1, bearer.abc.def.ghi")],
            "",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            p.protocol.unwrap(),
            "roomcast.v1",
            "the token is not echoed"
        );
    }

    #[test]
    fn bad_or_conflicting_credentials_are_refused() {
        assert_eq!(
            presented_native(&request(&[("authorization", "Basic dXNlcg==")], "")),
            Err(CredentialsError::NotBearer)
        );
        assert_eq!(
            presented_native(&request(
                &[("authorization", "Bearer a.b.c")],
                "?token=x.y.z"
            )),
            Err(CredentialsError::Conflicting)
        );
        let same = presented_native(&request(
            &[("authorization", "Bearer a.b.c")],
            "?token=a.b.c",
        ));
        assert_eq!(same.unwrap().unwrap().token, "a.b.c");
    }
}
