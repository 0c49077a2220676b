//! HTTP plumbing shared by every endpoint: JSON responses, JSON errors, and
//! reading a bounded JSON body with errors that name the offending field
//! (400 for malformed JSON, 413 for an oversized body, 422 for a body that
//! parses but does not fit the schema).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::telemetry::metrics;

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

/// `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    if status.is_client_error() || status.is_server_error() {
        metrics().error();
    }
    json(status, &serde_json::json!({ "error": message }))
}

/// `{"error": message, "field": field}` with 422.
pub fn field_error(field: &str, message: &str) -> HttpResponse {
    metrics().error();
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &serde_json::json!({ "error": message, "field": field }),
    )
}

/// Reads and parses a JSON body of at most `max` bytes.
pub async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    max: usize,
) -> Result<T, HttpResponse> {
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body exceeds {max} bytes"),
            ));
        }
        Err(e) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("could not read request body: {e}"),
            ));
        }
    };
    parse_json(&body)
}

/// Parses a JSON body, mapping errors to 400/422 responses naming the field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpResponse> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
    // Trailing garbage after the value is a syntax error too.
    if parsed.is_ok()
        && let Err(e) = de.end()
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("invalid JSON body: {e}"),
        ));
    }
    match parsed {
        Ok(value) => Ok(value),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            use serde_json::error::Category;
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => Err(error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid JSON body: {inner}"),
                )),
                Category::Data => {
                    let message = inner.to_string();
                    let field = if path == "." {
                        // serde reports a missing field at the parent: "missing field `price`".
                        message.split('`').nth(1).unwrap_or("(body)").to_string()
                    } else {
                        path
                    };
                    Err(field_error(
                        &field,
                        &format!("invalid field '{field}': {message}"),
                    ))
                }
            }
        }
    }
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

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
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
        let (status, v) = body_json(parse_json::<Body>(br#"{"ticker":"AAPL"}"#).unwrap_err());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "price");
    }

    #[test]
    fn wrong_type_is_named() {
        let (status, v) =
            body_json(parse_json::<Body>(br#"{"ticker":"AAPL","price":"x"}"#).unwrap_err());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "price");
    }

    #[test]
    fn malformed_json_is_400() {
        let (status, v) = body_json(parse_json::<Body>(b"{nope").unwrap_err());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(v["error"].as_str().unwrap().contains("invalid JSON"));
        let (status, _) =
            body_json(parse_json::<Body>(br#"{"ticker":"A","price":1} x"#).unwrap_err());
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
