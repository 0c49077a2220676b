//! `POST /api/ws/stream/backtest/{id}/events`: an existing seed 003 engine
//! publishes its own messages (`progress`, `trade`, `equity`, `metrics`,
//! `complete`, `error`, each `{"type","timestamp"?,"data":{…}}`) into the
//! run's stream, unchanged: viewers get them exactly as they get an
//! embedded run's, with the same replay. One message or an array of up to
//! 1,000. The first event registers the run (ids are unique across both
//! seeds); progress must never go back nor pass 100; the terminal event
//! ends the run and nothing may follow it (409;
//! `crate::sources::backtest::external`).

use hyper::Request;
use hyper::body::Incoming;

use crate::app::App;
use crate::http::backtest::{bad_run_id, produce, run_id};
use crate::http::response::HttpResponse;
use crate::sources::backtest::external::Target;

/// `POST /api/ws/stream/backtest/{id}/events`.
pub async fn publish(app: &App, req: Request<Incoming>, segment: &str) -> HttpResponse {
    match run_id(segment) {
        Ok(id) => produce(app, req, Target::Run(id)).await,
        Err(e) => bad_run_id(e),
    }
}
