//! The HTTP router: one table of routes (method and path pattern, with
//! `{name}` segments as parameters), dispatching to the publish, status and
//! alert handlers and to the WebSocket upgrades. A path that matches no
//! pattern gets 404; a path that matches with another method gets 405 with
//! the `Allow` header the table implies (RFC 9110 §15.5.6), both as JSON. A
//! path a literal pattern spells is never a parameter of another
//! (`/api/v1/backtest/run` is not the run `run`). A refused WebSocket
//! upgrade is the connection's last response. `HEAD` is answered wherever
//! `GET` is, with the same headers and no body.
//!
//! Each row also declares who may use it ([`Access`]): the one place that
//! says which endpoint is protected. The check runs here, before the
//! handler; `OPTIONS` on any path of the table is answered here too (CORS
//! preflights, [`crate::access::cors`]), and answers to an allowed browser
//! origin carry the CORS headers.

pub mod assets;
pub mod backtest;
pub mod limits;
pub mod public_url;
pub mod response;
pub mod status;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, HeaderValue, ORIGIN, TRANSFER_ENCODING, UPGRADE};
use hyper::{Method, Request, StatusCode};

use crate::access::Access;
use crate::app::App;
use crate::config::Config;
use crate::dialect::echo::EchoSession;
use crate::seeds::seed001::{alerts, publish};
use crate::seeds::{seed000, seed001, seed002, seed003, seed004};
use response::HttpResponse;

/// The path parameters of a matched route, in pattern order.
pub type Params = Vec<String>;

/// A handler's response, boxed so the table can hold every handler.
type Reply = Pin<Box<dyn Future<Output = HttpResponse> + Send>>;

/// What a route runs.
type Handler = fn(Arc<App>, Request<Incoming>, Params) -> Reply;

/// One row of the table.
struct Route {
    /// The method it answers.
    method: Method,
    /// Its path, `/`-separated; a `{name}` segment matches any one non-empty segment.
    pattern: &'static str,
    /// Who may use it: checked before the handler runs.
    access: Access,
    /// What answers it.
    handler: Handler,
}

impl Route {
    /// The parameters when `path` matches the pattern. A last segment
    /// `{*name}` matches the rest of the path (one or more segments).
    fn matches(&self, path: &str) -> Option<Params> {
        if let Some(prefix) = self.pattern.strip_suffix("}")
            && let Some((prefix, _)) = prefix.rsplit_once("{*")
        {
            let rest = path.strip_prefix(prefix)?;
            return (!rest.is_empty()).then(|| vec![rest.to_string()]);
        }
        let mut params = Vec::new();
        let mut segments = path.split('/');
        for expected in self.pattern.split('/') {
            let segment = segments.next()?;
            if expected.starts_with('{') {
                if segment.is_empty() {
                    return None;
                }
                params.push(segment.to_string());
            } else if segment != expected {
                return None;
            }
        }
        segments.next().is_none().then_some(params)
    }
}

/// Every route this node serves.
pub struct Router {
    /// The table, searched in order.
    routes: Vec<Route>,
}

impl Router {
    /// The routes for `config` (the echo endpoint only when enabled).
    pub fn new(config: &Config) -> Self {
        let mut routes = vec![
            get("/", Access::Open, |_, req, _| {
                Box::pin(async move { assets::serve("index.html", req.headers()) })
            }),
            get("/dashboard", Access::Open, |_, req, _| {
                Box::pin(async move { assets::serve("dashboard.html", req.headers()) })
            }),
            get("/static/{*path}", Access::Open, |_, req, params| {
                Box::pin(
                    async move { assets::serve(&format!("static/{}", params[0]), req.headers()) },
                )
            }),
            get("/openapi.json", Access::Open, |_, req, _| {
                Box::pin(async move { assets::serve("openapi.json", req.headers()) })
            }),
            get("/docs", Access::Open, |_, req, _| {
                Box::pin(async move { assets::serve("docs.html", req.headers()) })
            }),
            get("/redoc", Access::Open, |_, req, _| {
                Box::pin(async move { assets::serve("redoc.html", req.headers()) })
            }),
            get("/health", Access::Open, |app, _, _| {
                Box::pin(async move { status::health(&app) })
            }),
            get("/ready", Access::Open, |app, _, _| {
                Box::pin(async move { status::ready(&app) })
            }),
            get("/metrics", Access::Metrics, |_, _, _| {
                Box::pin(async move { status::metrics_text() })
            }),
            get("/api/ws/stats", Access::Open, |app, _, _| {
                Box::pin(async move { seed001::stats::stats(&app).await })
            }),
            get("/ws/status", Access::Open, |app, _, _| {
                Box::pin(async move { seed000::status::ws_status(&app).await })
            }),
            get("/v1/ws", Access::Open, |app, req, _| {
                Box::pin(async move { crate::native::stream(&app, req) })
            }),
            get("/ws/modeldata-stream", Access::Open, |app, req, _| {
                Box::pin(async move { seed000::stream(&app, req) })
            }),
            get("/api/ws", Access::Open, |app, req, _| {
                Box::pin(async move { seed001::stream(&app, req) })
            }),
            post(
                "/api/ws/broadcast/{kind}",
                Access::Producer,
                |app, req, params| {
                    Box::pin(async move {
                        match publish::Broadcast::from_path(&params[0]) {
                            Some(kind) => publish::broadcast(&app, kind, req).await,
                            None => not_found(req.uri().path()),
                        }
                    })
                },
            ),
            post("/api/alerts", Access::Admin, |app, req, _| {
                Box::pin(async move { alerts::create(&app, req).await })
            }),
            get("/api/alerts", Access::Admin, |app, req, _| {
                Box::pin(async move { alerts::list(&app, req).await })
            }),
            route(
                Method::DELETE,
                "/api/alerts/{id}",
                Access::Admin,
                |app, _, params| Box::pin(async move { alerts::delete(&app, &params[0]).await }),
            ),
            get("/ws", Access::Open, |app, req, _| {
                Box::pin(async move { seed002::stream(&app, req) })
            }),
            post("/api/v1/backtest/run", Access::Start, |app, req, _| {
                Box::pin(async move { seed002::backtest::run(&app, req).await })
            }),
            get("/api/v1/backtest/{id}", Access::Open, |app, _, params| {
                Box::pin(async move { backtest::status(&app, &params[0]).await })
            }),
            route(
                Method::DELETE,
                "/api/v1/backtest/{id}",
                Access::Admin,
                |app, _, params| Box::pin(async move { backtest::cancel(&app, &params[0]).await }),
            ),
            post("/api/backtesting/start", Access::Start, |app, req, _| {
                Box::pin(async move { seed003::backtest::start(&app, req).await })
            }),
            route(
                Method::DELETE,
                "/api/backtesting/{id}",
                Access::Admin,
                |app, _, params| Box::pin(async move { backtest::cancel(&app, &params[0]).await }),
            ),
            get(
                "/api/ws/stream/live-trading",
                Access::Open,
                |app, req, _| Box::pin(async move { seed003::live_trading_stream(&app, req) }),
            ),
            get(
                "/api/ws/stream/market-data/{symbol}",
                Access::Open,
                |app, req, params| {
                    Box::pin(
                        async move { seed003::market_data_stream(&app, req, &params[0]).await },
                    )
                },
            ),
            get(
                "/api/ws/stream/backtest/{id}",
                Access::Open,
                |app, req, params| {
                    Box::pin(async move { seed003::backtest_stream(&app, req, &params[0]).await })
                },
            ),
            post(
                "/api/v1/backtest/events",
                Access::Producer,
                |app, req, _| Box::pin(async move { seed002::events::publish(&app, req).await }),
            ),
            post(
                "/api/ws/stream/backtest/{id}/events",
                Access::Producer,
                |app, req, params| {
                    Box::pin(async move { seed003::events::publish(&app, req, &params[0]).await })
                },
            ),
            get("/api/ws/stream/status", Access::Open, |app, _, _| {
                Box::pin(async move { seed003::status::stream_status(&app).await })
            }),
            get("/websocket/status", Access::Open, |app, _, _| {
                Box::pin(async move { seed004::status::websocket_status(&app) })
            }),
            post(
                "/websocket/broadcast/{kind}",
                Access::Producer,
                |app, req, params| {
                    Box::pin(async move {
                        match seed004::broadcast::Kind::from_path(&params[0]) {
                            Some(kind) => seed004::broadcast::publish(&app, req, kind).await,
                            None => not_found(req.uri().path()),
                        }
                    })
                },
            ),
        ];
        if config.echo {
            routes.push(get("/v1/echo", Access::Open, |app, req, _| {
                Box::pin(async move { crate::ws::upgrade(&app, req, EchoSession) })
            }));
        }
        Router { routes }
    }

    /// Answers one HTTP request, with the CORS headers its `Origin` earns.
    pub async fn route(&self, app: Arc<App>, req: Request<Incoming>) -> HttpResponse {
        let origin = req.headers().get(ORIGIN).cloned();
        let mut response = self.dispatch(&app, req).await;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            app.access.cors.decorate(origin.as_ref(), &mut response);
        }
        response
    }

    /// Finds the route, checks access and runs the handler.
    async fn dispatch(&self, app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
        let upgrade = req.headers().contains_key(UPGRADE);
        let path = req.uri().path().to_string();
        let mut allowed: Vec<&Method> = Vec::new();
        // A path some literal pattern spells belongs to those patterns alone:
        // `GET /api/v1/backtest/run` is a wrong method (405), not the run "run".
        let literal = self
            .routes
            .iter()
            .any(|r| !r.pattern.contains('{') && r.pattern == path);
        for route in &self.routes {
            if literal && route.pattern.contains('{') {
                continue;
            }
            let Some(params) = route.matches(&path) else {
                continue;
            };
            // HEAD is GET without the body (RFC 9110 §9.3.2): hyper sends
            // the headers of the GET answer and drops its body.
            let method = if req.method() == Method::HEAD {
                &Method::GET
            } else {
                req.method()
            };
            if route.method != method {
                allowed.push(&route.method);
                continue;
            }
            let peer = req.extensions().get::<IpAddr>().copied();
            if let Err(denied) = app.access.check(route.access, peer, req.headers()) {
                tracing::debug!(?peer, route = route.pattern, %denied, "request refused");
                let refusal = denied.into_response();
                // The body was not read: the connection cannot carry another request.
                return if upgrade || has_body(&req) {
                    response::closing(refusal)
                } else {
                    refusal
                };
            }
            let response = (route.handler)(Arc::clone(app), req, params).await;
            // A client that asked for an upgrade and did not get it will not
            // send another request on this connection: do not keep it open.
            if upgrade && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                return response::closing(response);
            }
            return response;
        }
        if allowed.is_empty() {
            return not_found(&path);
        }
        if req.method() == Method::OPTIONS {
            return app
                .access
                .cors
                .preflight(req.headers().get(ORIGIN), &allowed);
        }
        let mut response = response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {} not allowed on {path}", req.method()),
        );
        let mut allow = allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>();
        if allowed.contains(&&Method::GET) {
            allow.push(Method::HEAD.as_str());
        }
        let allow = allow.join(", ");
        response.headers_mut().insert(
            ALLOW,
            HeaderValue::from_str(&allow).expect("method names are valid header text"),
        );
        response
    }
}

/// True when a request may have a body (one that a refusal leaves unread).
fn has_body<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0")
}

fn route(method: Method, pattern: &'static str, access: Access, handler: Handler) -> Route {
    Route {
        method,
        pattern,
        access,
        handler,
    }
}

fn get(pattern: &'static str, access: Access, handler: Handler) -> Route {
    route(Method::GET, pattern, access, handler)
}

fn post(pattern: &'static str, access: Access, handler: Handler) -> Route {
    route(Method::POST, pattern, access, handler)
}

fn not_found(path: &str) -> HttpResponse {
    response::error(StatusCode::NOT_FOUND, &format!("no route for {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(pattern: &'static str) -> Route {
        get(pattern, Access::Open, |_, _, _| {
            Box::pin(async { not_found("/") })
        })
    }

    #[test]
    fn patterns_match_whole_paths_and_capture_parameters() {
        let r = pattern("/api/alerts/{id}");
        assert_eq!(r.matches("/api/alerts/42"), Some(vec!["42".to_string()]));
        assert_eq!(r.matches("/api/alerts/"), None);
        assert_eq!(r.matches("/api/alerts"), None);
        assert_eq!(r.matches("/api/alerts/42/x"), None);
        let r = pattern("/health");
        assert_eq!(r.matches("/health"), Some(vec![]));
        assert_eq!(r.matches("/health/"), None);
        assert_eq!(r.matches("/healthz"), None);
    }

    /// `web/openapi.json`'s operations: (method, path) in document order.
    fn documented() -> Vec<(Method, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../web/openapi.json")).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("a paths object");
        let mut operations = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().expect("a path item").keys() {
                if let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    && method != Method::OPTIONS
                {
                    operations.push((method, path.clone()));
                }
            }
        }
        operations
    }

    #[test]
    fn the_openapi_document_and_the_route_table_name_the_same_endpoints() {
        let config = Config {
            echo: true,
            ..Config::default()
        };
        let router = Router::new(&config);
        let documented = documented();
        // Every documented operation is served: some route of its method
        // matches its path (`{name}` stands for itself, a non-empty segment).
        for (method, path) in &documented {
            let served = router
                .routes
                .iter()
                .any(|r| r.method == *method && r.matches(path).is_some());
            assert!(served, "{method} {path} is documented but not routed");
        }
        // Every route is documented: by its own pattern (`{*name}` is
        // OpenAPI's `{name}`), or by the concrete paths it serves
        // (`/api/ws/broadcast/price` for `/api/ws/broadcast/{kind}`).
        for (method, pattern) in router.routes.iter().map(|r| (&r.method, r.pattern)) {
            let spelled = pattern.replace("{*", "{");
            let by_pattern = documented.iter().any(|(m, p)| m == method && *p == spelled);
            let concrete: Vec<&str> = documented
                .iter()
                .filter(|(m, p)| m == method && !p.contains('{'))
                .filter(|(_, p)| {
                    router
                        .routes
                        .iter()
                        .any(|r| r.pattern == pattern && r.matches(p).is_some())
                })
                .map(|(_, p)| p.as_str())
                .collect();
            assert!(
                by_pattern || !concrete.is_empty(),
                "{method} {pattern} is routed but not documented"
            );
        }
        // The concrete broadcast paths are kinds their handlers know, and
        // every kind is documented.
        let kinds = |prefix: &str| -> Vec<String> {
            documented
                .iter()
                .filter_map(|(_, p)| p.strip_prefix(prefix).map(str::to_string))
                .collect()
        };
        let seed001 = kinds("/api/ws/broadcast/");
        assert_eq!(seed001.len(), 4, "{seed001:?}");
        for kind in &seed001 {
            assert!(publish::Broadcast::from_path(kind).is_some(), "{kind}");
        }
        let seed004 = kinds("/websocket/broadcast/");
        assert_eq!(seed004.len(), 3, "{seed004:?}");
        for kind in &seed004 {
            assert!(
                seed004::broadcast::Kind::from_path(kind).is_some(),
                "{kind}"
            );
        }
    }

    #[test]
    fn a_tail_pattern_captures_the_rest_of_the_path() {
        let r = pattern("/static/{*path}");
        assert_eq!(
            r.matches("/static/js/a.js"),
            Some(vec!["js/a.js".to_string()])
        );
        assert_eq!(r.matches("/static/a.css"), Some(vec!["a.css".to_string()]));
        assert_eq!(r.matches("/static/"), None);
        assert_eq!(r.matches("/static"), None);
        assert_eq!(r.matches("/staticx/a"), None);
    }
}
