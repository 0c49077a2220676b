//! `POST /api/backtesting/start`: seed 003's start (its example body:
//! `name`, `symbol`, `timeframes`, `start_date`, `end_date`,
//! `initial_capital`, `strategy_ids`, `risk_per_trade`; bounds are our
//! reading, spec §3.5). It answers 202 at once with the run's id
//! (`backtest_<YYYYMMDD>_<HHMMSS>`, suffixed `_2`, `_3`, … when taken) and
//! the `stream_url` the client reached this node at; `?stream=false` runs
//! without publishing.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::http::backtest::{refused, start_refused};
use crate::http::public_url::PublicUrl;
use crate::http::response::{self, HttpResponse};
use crate::sources::backtest::request::{
    bad, check_balance, check_bars, check_range, check_risk, check_strategy, check_symbol,
    check_timeframe,
};
use crate::sources::backtest::{IdPolicy, Origin, RequestError, RunRequest};

/// The body (unknown fields are ignored, as the seed's Python service does).
#[derive(Debug, Deserialize)]
struct StartBody {
    name: String,
    symbol: String,
    #[serde(default)]
    timeframes: Option<Vec<String>>,
    start_date: String,
    end_date: String,
    #[serde(default)]
    initial_capital: Option<f64>,
    strategy_ids: Vec<String>,
    #[serde(default)]
    risk_per_trade: Option<f64>,
    #[serde(default)]
    max_concurrent_positions: Option<i64>,
}

/// The seed's default timeframes.
const DEFAULT_TIMEFRAMES: [&str; 3] = ["4H", "1H", "15M"];

impl StartBody {
    fn into_request(
        self,
        app: &App,
        streaming: bool,
    ) -> Result<(RunRequest, String), RequestError> {
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(bad("name", "must be 1 to 200 characters"));
        }
        let symbol = check_symbol(&self.symbol)?;
        let labels: Vec<String> = match self.timeframes {
            Some(t) if t.is_empty() => {
                return Err(bad("timeframes", "must list at least one timeframe"));
            }
            Some(t) => t,
            None => DEFAULT_TIMEFRAMES.iter().map(|s| s.to_string()).collect(),
        };
        let mut frames = Vec::with_capacity(labels.len());
        for label in &labels {
            frames.push((check_timeframe("timeframes", label)?, label.clone()));
        }
        frames.sort_by_key(|(tf, _)| *tf);
        frames.dedup_by_key(|(tf, _)| *tf);
        let (timeframe, timeframe_label) = frames[0].clone();
        let higher = frames[1..].iter().map(|(tf, _)| *tf).collect();
        let strategy = match self.strategy_ids.first() {
            None => return Err(bad("strategy_ids", "must name at least one strategy")),
            Some(id) => {
                for other in &self.strategy_ids[1..] {
                    check_strategy("strategy_ids", other)?;
                }
                check_strategy("strategy_ids", id)?
            }
        };
        if let Some(n) = self.max_concurrent_positions
            && !(1..=20).contains(&n)
        {
            return Err(bad(
                "max_concurrent_positions",
                "must be an integer in [1, 20]",
            ));
        }
        let now = chrono::Utc::now();
        let (from, to) = check_range(&self.start_date, &self.end_date, now.timestamp())?;
        let total_bars = check_bars(
            &symbol,
            timeframe,
            from,
            to,
            app.backtests.settings().max_bars,
        )?;
        let request = RunRequest {
            id: format!("backtest_{}", now.format("%Y%m%d_%H%M%S")),
            origin: Origin::Seed003,
            name: name.clone(),
            variant: strategy.clone(),
            strategy,
            symbol,
            timeframe_label,
            timeframe,
            higher,
            from,
            to,
            total_bars,
            initial_balance: check_balance(
                "initial_capital",
                self.initial_capital.unwrap_or(10_000.0),
            )?,
            risk_per_trade: check_risk(self.risk_per_trade.unwrap_or(0.02))?,
            streaming,
        };
        Ok((request, name))
    }
}

/// `POST /api/backtesting/start[?stream=false]`.
pub async fn start(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let streaming = response::query_param(&req, "stream").is_none_or(|v| v != "false" && v != "0");
    let public = PublicUrl::of_request(
        &req,
        app.config.public_url.as_deref(),
        app.config.bind,
        app.config.tls.enabled(),
    );
    let body: StartBody = match response::read_json(req, &app.config.http).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let (request, name) = match body.into_request(app, streaming) {
        Ok(request) => request,
        Err(e) => return refused(e),
    };
    let run = match app.backtests.start(request, IdPolicy::Suffixed).await {
        Ok(run) => run,
        Err(e) => return start_refused(e),
    };
    let stream_url =
        streaming.then(|| public.ws_url(&format!("/api/ws/stream/backtest/{}", run.id)));
    response::json(
        StatusCode::ACCEPTED,
        &json!({
            "backtest_id": run.id,
            "status": "pending",
            "streaming": streaming,
            "stream_url": stream_url,
            "message": format!("Backtest '{name}' queued. Connect to WebSocket for real-time updates."),
        }),
    )
}
