//! `POST /api/v1/backtest/run`: seed 002's start. The seed names only the
//! call (`run_full_system_backtest(mode, data, enable_ws_streaming,
//! backtest_id)`); the body is our reading (spec §2.3): `mode`, `symbol`,
//! `timeframe`, `start_date`, `end_date`, optional `backtest_id`,
//! `initial_balance`, `risk_per_trade`, `enable_ws_streaming`. It answers
//! 202 at once; the run streams on `/ws` topic `backtest`. `?wait=true`
//! answers when the run ends instead (200 with `backtest_complete.data`,
//! or 500 with `backtest_error.data`).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::http::backtest::{refused, start_refused};
use crate::http::response::{self, HttpResponse};
use crate::sources::backtest::request::{
    bad, check_balance, check_bars, check_range, check_risk, check_strategy, check_symbol,
    check_timeframe,
};
use crate::sources::backtest::{IdPolicy, Origin, RequestError, RunRequest, RunStatus};

/// The body (unknown fields are ignored, as the seed's Python service does).
#[derive(Debug, Deserialize)]
struct RunBody {
    mode: String,
    symbol: String,
    timeframe: String,
    start_date: String,
    end_date: String,
    #[serde(default)]
    backtest_id: Option<String>,
    #[serde(default)]
    initial_balance: Option<f64>,
    #[serde(default)]
    risk_per_trade: Option<f64>,
    #[serde(default)]
    enable_ws_streaming: Option<bool>,
}

/// The modes seed 002 runs ("Vanilla, Spiced, etc.").
const MODES: [&str; 4] = ["vanilla", "spiced", "vanilla_full", "spiced_full"];

impl RunBody {
    fn into_request(self, app: &App) -> Result<RunRequest, RequestError> {
        let mode = self.mode.to_ascii_lowercase();
        if !MODES.contains(&mode.as_str()) {
            return Err(bad(
                "mode",
                format!(
                    "unknown mode '{}' (expected vanilla, spiced, vanilla_full or spiced_full)",
                    self.mode.chars().take(32).collect::<String>()
                ),
            ));
        }
        let strategy = check_strategy("mode", &mode)?;
        let symbol = check_symbol(&self.symbol)?;
        let timeframe = check_timeframe("timeframe", &self.timeframe)?;
        let now = chrono::Utc::now().timestamp();
        let (from, to) = check_range(&self.start_date, &self.end_date, now)?;
        let settings = app.backtests.settings();
        let total_bars = check_bars(&symbol, timeframe, from, to, settings.max_bars)?;
        let id = match self.backtest_id {
            Some(id) => {
                crate::catalog::RoomName::backtest(&id)
                    .map_err(|e| bad("backtest_id", e.to_string()))?;
                id
            }
            None => uuid_v4(),
        };
        Ok(RunRequest {
            id,
            origin: Origin::Seed002,
            name: mode.clone(),
            variant: mode,
            strategy,
            symbol,
            timeframe_label: self.timeframe,
            timeframe,
            higher: Vec::new(),
            from,
            to,
            total_bars,
            initial_balance: check_balance(
                "initial_balance",
                self.initial_balance.unwrap_or(10_000.0),
            )?,
            risk_per_trade: check_risk(self.risk_per_trade.unwrap_or(0.01))?,
            streaming: self.enable_ws_streaming.unwrap_or(true),
        })
    }
}

/// A random UUID v4 (`"uuid-string"` in the seed's example).
fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `POST /api/v1/backtest/run`.
pub async fn run(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let wait = response::query_param(&req, "wait").is_some_and(|v| v == "true" || v == "1");
    let body: RunBody = match response::read_json(req, &app.config.http).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let request = match body.into_request(app) {
        Ok(request) => request,
        Err(e) => return refused(e),
    };
    let run = match app.backtests.start(request, IdPolicy::Exact).await {
        Ok(run) => run,
        Err(e) => return start_refused(e),
    };
    if wait {
        let state = run.finished().await;
        return match state.status {
            RunStatus::Completed => response::json(StatusCode::OK, &state.result),
            _ => response::json(StatusCode::INTERNAL_SERVER_ERROR, &state.error),
        };
    }
    response::json(
        StatusCode::ACCEPTED,
        &json!({
            "backtest_id": run.id,
            "status": "pending",
            "topic": "backtest",
            "message": "Backtest queued. Subscribe to topic 'backtest' on /ws for real-time updates.",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_uuid_v4() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, uuid_v4());
    }
}
