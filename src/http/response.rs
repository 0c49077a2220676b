//! HTTP plumbing shared by every endpoint: JSON responses, JSON errors, and
//! reading a bounded JSON body with errors that name the offending field
//! (415 unless it is declared `application/json`, 408 when it does not
//! arrive in time, 413 when it is too large, 400 for malformed JSON, 422 for a
//! body that parses but does not fit the schema). Requiring the JSON media
//! type means a web page cannot POST to roomcast from a browser without a
//! CORS preflight (a form or `text/plain` body is a "simple" request).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::limits::HttpLimits;
use crate::telemetry::{Limit, metrics};

/// Every handler's response type.
pub type HttpResponse = Response<Full<Bytes>>;

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HttpResponse {
    let body = serde_json::to_vec(value).expect("serialising a response cannot fail");
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A plain-text response (Prometheus exposition).
pub fn text(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `{"error": message}`. Counted in `roomcast_errors_total` unless it is a
/// 404 or 405: scanners and typos ask for paths and methods that do not
/// exist all day, and would drown the errors worth alerting on.
pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    if counts_as_error(status) {
        metrics().error();
    }
    json(status, &serde_json::json!({ "error": message }))
}

/// Whether an error response of `status` counts in `roomcast_errors_total`.
fn counts_as_error(status: StatusCode) -> bool {
    (status.is_client_error() || status.is_server_error())
        && status != StatusCode::NOT_FOUND
        && status != StatusCode::METHOD_NOT_ALLOWED
}

/// Why a request body was refused; one variant per HTTP status it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// 400: the body is not JSON (or has trailing garbage).
    #[error("invalid JSON body: {0}")]
    BadJson(String),
    /// 400: the body could not be read.
    #[error("could not read request body: {0}")]
    Body(String),
    /// 413: the body is larger than `ROOMCAST_MAX_BODY_SIZE`.
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    /// 408: the body did not arrive within `ROOMCAST_BODY_TIMEOUT`.
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    /// 415: the body is not declared as `application/json`.
    #[error("Content-Type must be application/json (got {0})")]
    UnsupportedMediaType(String),
    /// 422: the body is JSON but a field is missing, mistyped or out of range.
    #[error("{message}")]
    Field {
        /// The offending field's path, e.g. `price`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl HttpError {
    /// A 422 naming `field`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        HttpError::Field {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The JSON error response: `{"error"}` or `{"error","field"}`.
    pub fn into_response(self) -> HttpResponse {
        let message = self.to_string();
        match self {
            HttpError::BadJson(_) | HttpError::Body(_) => error(StatusCode::BAD_REQUEST, &message),
            HttpError::TooLarge(_) => closing(error(StatusCode::PAYLOAD_TOO_LARGE, &message)),
            HttpError::Timeout(_) => closing(error(StatusCode::REQUEST_TIMEOUT, &message)),
            HttpError::UnsupportedMediaType(_) => {
                error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &message)
            }
            HttpError::Field { field, .. } => {
                metrics().error();
                json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &serde_json::json!({ "error": message, "field": field }),
                )
            }
        }
    }
}

/// Marks `response` as the connection's last (`Connection: close`): after a
/// body that was not read to its end, or a refused upgrade, the connection
/// cannot carry another request.
pub fn closing(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// True when the request declares a JSON body: `application/json`, with
/// parameters (`; charset=utf-8`) allowed, in any case.
fn declares_json<B>(req: &Request<B>) -> Result<(), HttpError> {
    let declared = req.headers().get(CONTENT_TYPE);
    let essence = declared
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(()),
        Some(essence) => Err(HttpError::UnsupportedMediaType(format!("{essence:?}"))),
        None => Err(HttpError::UnsupportedMediaType("no Content-Type".into())),
    }
}

/// Reads a JSON request body within `limits`: declared `application/json`,
/// at most `ROOMCAST_MAX_BODY_SIZE` bytes, within `ROOMCAST_BODY_TIMEOUT`.
pub async fn read_body(req: Request<Incoming>, limits: &HttpLimits) -> Result<Bytes, HttpError> {
    declares_json(&req)?;
    let max = limits.max_body_size;
    let collect = Limited::new(req.into_body(), max).collect();
    match tokio::time::timeout(limits.body_timeout.get(), collect).await {
        Err(_) => {
            metrics().limit_hit(Limit::BodyTimeout);
            Err(HttpError::Timeout(limits.body_timeout.get()))
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            metrics().limit_hit(Limit::BodySize);
            Err(HttpError::TooLarge(max))
        }
        Ok(Err(e)) => Err(HttpError::Body(e.to_string())),
    }
}

/// Reads a JSON request body ([`read_body`]) and parses it as `T`
/// ([`parse_json`]).
pub async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    limits: &HttpLimits,
) -> Result<T, HttpError> {
    parse_json(&read_body(req, limits).await?)
}

/// Parses a JSON body: 400 unless the body is JSON (UTF-8, one value,
/// nothing after it, strings without lone surrogates, also in fields `T`
/// ignores), 422 naming the field when it is JSON that does not fit `T`. A
/// key given twice takes its last value, as Python's `json` (the seeds'
/// servers) does. The body is read into a `serde_json::Value` first: every
/// byte is checked, and bodies are small and rare next to the fan-out.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| HttpError::BadJson(e.to_string()))?;
    serde_path_to_error::deserialize::<_, T>(value)
        .map_err(|e| field_error(e.path().to_string(), e.into_inner()))
}

/// A 422 for a schema error at `path`. serde reports a missing field at its
/// parent (`.`) and names it only in its message; any other error at `.` is
/// about the body as a whole.
fn field_error(path: String, inner: serde_json::Error) -> HttpError {
    let message = inner.to_string();
    let field = if path == "." {
        message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .unwrap_or("(body)")
            .to_string()
    } else {
        path
    };
    let message = format!("invalid field '{field}': {message}");
    HttpError::Field { field, message }
}

/// The credentials of an `Authorization: Bearer <credentials>` value (the
/// scheme in any case, RFC 9110 §11.1), trimmed; `None` for another scheme
/// or empty credentials. API keys and JWTs both travel this way.
pub fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let v = value.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|&b| b == b' ')?);
    let credentials = rest.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !credentials.is_empty()).then_some(credentials)
}

/// The first value of query parameter `name`, percent-decoded.
pub fn query_param<B>(req: &Request<B>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_and_methods_are_not_counted_as_errors() {
        assert!(!counts_as_error(StatusCode::NOT_FOUND));
        assert!(!counts_as_error(StatusCode::METHOD_NOT_ALLOWED));
        assert!(!counts_as_error(StatusCode::OK));
        assert!(counts_as_error(StatusCode::BAD_REQUEST));
        assert!(counts_as_error(StatusCode::PAYLOAD_TOO_LARGE));
        assert!(counts_as_error(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        ticker: String,
        price: f64,
    }

    fn body_json(r: HttpResponse) -> (StatusCode, serde_json::Value) {
        use http_body_util::BodyExt;
        let status = r.status();
        let bytes = block_on(r.into_body().collect()).unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn missing_field_is_named() {
        let (status, v) = body_json(
            parse_json::<Body>(br#"{"ticker":"AAPL"}"#)
                .unwrap_err()
                .into_response(),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "price");
    }

    #[test]
    fn wrong_type_is_named() {
        let (status, v) = body_json(
            parse_json::<Body>(br#"{"ticker":"AAPL","price":"x"}"#)
                .unwrap_err()
                .into_response(),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "price");
    }

    #[test]
    fn wrong_type_for_an_enum_is_named_not_a_syntax_error() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Kind {
            Above,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct WithEnum {
            kind: Kind,
        }
        let (status, v) = body_json(
            parse_json::<WithEnum>(br#"{"kind":3}"#)
                .unwrap_err()
                .into_response(),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "kind");
    }

    #[test]
    fn only_a_json_media_type_is_read() {
        let req = |ct: Option<&str>| {
            let mut b = Request::builder().method("POST").uri("/x");
            if let Some(ct) = ct {
                b = b.header(CONTENT_TYPE, ct);
            }
            b.body(()).unwrap()
        };
        assert!(declares_json(&req(Some("application/json"))).is_ok());
        assert!(declares_json(&req(Some("Application/JSON; charset=utf-8"))).is_ok());
        for refused in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let err = declares_json(&req(refused)).unwrap_err();
            let (status, v) = body_json(err.into_response());
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{refused:?}");
            assert!(v["error"].as_str().unwrap().contains("application/json"));
        }
    }

    #[test]
    fn a_body_of_the_wrong_type_is_named_as_the_body() {
        for body in [&b"5"[..], b"true", br#""text""#] {
            let (status, v) = body_json(parse_json::<Body>(body).unwrap_err().into_response());
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(v["field"], "(body)", "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn invalid_text_in_an_ignored_field_is_400() {
        for body in [
            &b"{\"ticker\":\"A\",\"price\":1,\"x\":\"\xff\"}"[..],
            br#"{"ticker":"A","price":1,"x":"\ud800"}"#,
        ] {
            let (status, _) = body_json(parse_json::<Body>(body).unwrap_err().into_response());
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_repeated_key_takes_its_last_value() {
        let body: Body = parse_json(br#"{"ticker":"A","price":1,"price":2}"#).unwrap();
        assert_eq!(body.price, 2.0);
    }

    #[test]
    fn malformed_json_is_400_even_after_a_type_error() {
        let (status, v) = body_json(
            parse_json::<Body>(br#"{"ticker":"AAPL","price":"x""#)
                .unwrap_err()
                .into_response(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    }

    #[test]
    fn malformed_json_is_400() {
        let (status, v) = body_json(parse_json::<Body>(b"{nope").unwrap_err().into_response());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(v["error"].as_str().unwrap().contains("invalid JSON"));
        let (status, _) = body_json(
            parse_json::<Body>(br#"{"ticker":"A","price":1} x"#)
                .unwrap_err()
                .into_response(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
