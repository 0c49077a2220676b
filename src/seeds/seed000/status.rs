//! Seed 000's status endpoint, `GET /ws/status`: the seed's fields
//! (connections, whether the broadcast runs, its interval), then roomcast's
//! own (every feed with its connections, the source's health, the fleet).

use hyper::StatusCode;

use crate::app::App;
use crate::http::response::{self, HttpResponse};
use crate::http::status::cluster;

/// Seed 000's `GET /ws/status` fields, then roomcast's own.
pub async fn ws_status(app: &App) -> HttpResponse {
    let modeldata = &app.modeldata;
    let interval = modeldata.config().interval.as_secs_f64();
    let feeds: Vec<_> = modeldata
        .feeds()
        .into_iter()
        .map(|(room, connections)| serde_json::json!({ "room": room.as_str(), "connections": connections }))
        .collect();
    response::json(
        StatusCode::OK,
        &serde_json::json!({
            "modeldata_stream_connections": modeldata.connections(),
            "modeldata_stream_task_running": modeldata.is_broadcasting(),
            "broadcast_intervals": {
                "modeldata_updates": format!("{interval} seconds"),
            },
            "active_connections": app.sessions.len(),
            "modeldata": {
                "feeds": feeds,
                "source": modeldata.report(),
            },
            "uptime": app.started.elapsed().as_secs(),
            "cluster": cluster(app).await,
        }),
    )
}
