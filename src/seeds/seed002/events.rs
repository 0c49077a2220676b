//! `POST /api/v1/backtest/events[?topic=backtest]`: an existing seed 002
//! engine publishes its own messages (`backtest_start`,
//! `backtest_progress`, `log_entry`, `backtest_complete`,
//! `backtest_error`, each `{"type","data":{…,"backtest_id"}}`) into a
//! topic, unchanged: a Python producer swaps `manager.broadcast(message,
//! topic)` for this POST of the same dict (one, or an array of up to
//! 1,000). A missing `data.timestamp` is filled in. The run registry keeps
//! the lifecycle honest (`crate::sources::backtest::external`):
//! `backtest_start` registers the run (ids are unique across both seeds),
//! the terminal event ends it, and anything of a run before its start or
//! after its end is refused (409).

use hyper::Request;
use hyper::body::Incoming;

use crate::app::App;
use crate::catalog::RoomName;
use crate::http::backtest::produce;
use crate::http::response::{self, HttpError, HttpResponse};
use crate::sources::backtest::external::Target;

/// `POST /api/v1/backtest/events`.
pub async fn publish(app: &App, req: Request<Incoming>) -> HttpResponse {
    let topic = response::query_param(&req, "topic").unwrap_or_else(|| "backtest".into());
    match RoomName::topic(&topic) {
        Ok(room) => produce(app, req, Target::Topic(room)).await,
        Err(e) => HttpError::field("topic", e.to_string()).into_response(),
    }
}
