//! The web side of a node: the pages a person opens (the dashboard at `/`,
//! seed 001's `/dashboard`, the API docs), their scripts and styles, and the
//! vendored libraries they use, all embedded in the binary from `web/` — no
//! CDN and no files to install beside the binary. (Debug builds read the
//! same files from the repository, so a page can be edited without a
//! rebuild; release builds carry them.)
//!
//! Each answer carries its `Content-Type`, a strong `ETag` (a digest of the
//! file) and `Cache-Control`: pages and documents revalidate on every load
//! (`no-cache`), so a new release is picked up at once; scripts, styles and
//! libraries are reused for an hour, then revalidated. `If-None-Match` with
//! the current tag earns a 304 without a body. Text larger than 1 KiB goes
//! gzip-compressed to clients that accept it (compressed once, on first
//! use, and kept). Every answer says `X-Content-Type-Options: nosniff`.
//!
//! One file comes from outside `web/`: the JavaScript client of the native
//! protocol, `clients/js/src/roomcast-client.js`, served at
//! `static/js/roomcast-client.js` from its package's own folder, so the file
//! a page imports is the file `npm install ./clients/js` installs.

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::Full;
use hyper::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue,
    IF_NONE_MATCH, VARY,
};
use hyper::{Response, StatusCode};
use parking_lot::Mutex;
use rust_embed::RustEmbed;

use super::response::{self, HttpResponse};

/// The files under `web/`, by their path there (`static/css/realtime.css`).
#[derive(RustEmbed)]
#[folder = "web/"]
struct Web;

/// The JavaScript client package's sources (`clients/js/src/`), by file name.
#[derive(RustEmbed)]
#[folder = "clients/js/src/"]
struct ClientJs;

/// Where the pages import the JavaScript client from (relative to `web/`'s root).
const CLIENT_JS_PREFIX: &str = "static/js/";

/// The one file of [`ClientJs`] served under [`CLIENT_JS_PREFIX`].
const CLIENT_JS_FILE: &str = "roomcast-client.js";

/// Text files at least this large are worth compressing.
const COMPRESS_FROM: usize = 1024;

/// How long a browser may reuse a script, style or library before asking again.
const STATIC_CACHE: &str = "public, max-age=3600";

/// Pages and documents: always revalidated (cheap with the `ETag`).
const PAGE_CACHE: &str = "no-cache";

/// One embedded file, found.
struct Asset {
    /// Its bytes (borrowed from the binary in release builds).
    body: Bytes,
    /// `"<16 hex digits of its SHA-256>"`: the same file gives the same tag on every node.
    etag: HeaderValue,
    /// From its extension.
    content_type: &'static str,
}

/// Answers `GET` for the embedded file at `path` (relative to `web/`), or 404.
pub fn serve(path: &str, request: &HeaderMap) -> HttpResponse {
    let Some(asset) = find(path) else {
        return response::error(StatusCode::NOT_FOUND, &format!("no file {path}"));
    };
    let cache = if asset.content_type.starts_with("text/html")
        || asset.content_type.starts_with("application/json")
    {
        PAGE_CACHE
    } else {
        STATIC_CACHE
    };
    let mut builder = Response::builder()
        .header(ETAG, asset.etag.clone())
        .header(CACHE_CONTROL, cache)
        .header("x-content-type-options", "nosniff");
    if fresh(request, &asset.etag) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Full::new(Bytes::new()))
            .expect("static headers are valid");
    }
    builder = builder.header(CONTENT_TYPE, asset.content_type);
    let mut body = asset.body;
    if is_text(asset.content_type) && body.len() >= COMPRESS_FROM {
        builder = builder.header(VARY, "accept-encoding");
        if accepts_gzip(request) {
            body = gzipped(path, &asset.etag, &body);
            builder = builder.header(CONTENT_ENCODING, "gzip");
        }
    }
    builder
        .status(StatusCode::OK)
        .body(Full::new(body))
        .expect("static headers are valid")
}

/// The file at `path`, when the path is a plain relative one and the file is there.
fn find(path: &str) -> Option<Asset> {
    if !safe(path) {
        return None;
    }
    let file = match path.strip_prefix(CLIENT_JS_PREFIX) {
        Some(CLIENT_JS_FILE) => ClientJs::get(CLIENT_JS_FILE)?,
        _ => Web::get(path)?,
    };
    let digest = file.metadata.sha256_hash();
    let prefix = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"));
    let tag = format!("\"{prefix:016x}\"");
    let body = match file.data {
        std::borrow::Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        std::borrow::Cow::Owned(bytes) => Bytes::from(bytes),
    };
    Some(Asset {
        body,
        etag: HeaderValue::from_str(&tag).expect("hex is valid header text"),
        content_type: content_type(path),
    })
}

/// A relative path of plain segments: no `..`, `.`, empty segment or backslash
/// (debug builds read from disk, and no path may climb out of `web/`).
fn safe(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// The media type an extension stands for.
fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "wav" => "audio/wav",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Worth compressing: text of any kind (images and fonts are compressed already).
fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type == "image/svg+xml"
}

/// True when the request's `If-None-Match` names `etag` (or `*`).
fn fresh(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let tag = etag.as_bytes();
    request.get_all(IF_NONE_MATCH).iter().any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|candidate| {
            let candidate = candidate.trim_ascii();
            let candidate = candidate.strip_prefix(b"W/").unwrap_or(candidate);
            candidate == b"*" || candidate == tag
        })
    })
}

/// True when `Accept-Encoding` lists gzip without refusing it (`q=0`).
fn accepts_gzip(request: &HeaderMap) -> bool {
    request.get_all(ACCEPT_ENCODING).iter().any(|value| {
        value.to_str().unwrap_or("").split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// `body` gzip-compressed, from the cache when this version of `path` was
/// compressed before.
fn gzipped(path: &str, etag: &HeaderValue, body: &[u8]) -> Bytes {
    /// Compressed files by path, with the tag of the version compressed.
    static CACHE: OnceLock<Mutex<HashMap<String, (HeaderValue, Bytes)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some((tag, bytes)) = cache.lock().get(path)
        && tag == etag
    {
        return bytes.clone();
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 3), Compression::best());
    encoder
        .write_all(body)
        .expect("writing to a Vec cannot fail");
    let compressed = Bytes::from(encoder.finish().expect("writing to a Vec cannot fail"));
    cache
        .lock()
        .insert(path.to_string(), (etag.clone(), compressed.clone()));
    compressed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn paths_that_could_leave_the_folder_are_refused() {
        for path in [
            "",
            "../Cargo.toml",
            "static/../../x",
            "static//x",
            "./index.html",
            "a\\b",
        ] {
            assert!(!safe(path), "{path}");
        }
        assert!(safe("static/css/realtime.css"));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("static/js/a.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("static/x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("openapi.json"), "application/json");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn if_none_match_with_the_tag_or_a_star_is_fresh() {
        let tag = HeaderValue::from_static("\"0123456789abcdef\"");
        assert!(fresh(
            &headers(&[("if-none-match", "\"0123456789abcdef\"")]),
            &tag
        ));
        assert!(fresh(
            &headers(&[("if-none-match", "\"x\", W/\"0123456789abcdef\"")]),
            &tag
        ));
        assert!(fresh(&headers(&[("if-none-match", "*")]), &tag));
        assert!(!fresh(&headers(&[("if-none-match", "\"other\"")]), &tag));
        assert!(!fresh(&HeaderMap::new(), &tag));
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1.0, GZIP;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip;q=0, br"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "br")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_javascript_client_is_served_from_its_package() {
        let script = serve("static/js/roomcast-client.js", &HeaderMap::new());
        assert_eq!(script.status(), StatusCode::OK);
        assert_eq!(
            script.headers()[CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(script.headers()[CACHE_CONTROL], STATIC_CACHE);
        let served = find("static/js/roomcast-client.js").expect("the client is embedded");
        let source = include_bytes!("../../clients/js/src/roomcast-client.js");
        assert_eq!(&served.body[..], &source[..]);
        assert!(
            std::str::from_utf8(&served.body)
                .expect("UTF-8")
                .contains("export class RoomcastClient")
        );
        // Only that file: the package's folder is not browsable under another name.
        assert!(find("static/js/roomcast-client.js/x").is_none());
        assert!(find("roomcast-client.js").is_none());
    }

    #[test]
    fn the_landing_page_is_embedded_with_a_revalidating_cache() {
        let page = serve("index.html", &HeaderMap::new());
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CACHE_CONTROL], PAGE_CACHE);
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let tag = page.headers()[ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(IF_NONE_MATCH, tag);
        assert_eq!(
            serve("index.html", &again).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve("nope.html", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
