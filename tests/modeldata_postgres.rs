//! Seed 000 on a real PostgreSQL: the resampled stream read from users'
//! `modeldata` tables (including other column types), new rows arriving
//! while clients are connected, and the database going away and coming back.

mod common;

use common::postgres::{PgInstance, TestDb, connect};
use common::*;
use hyper::StatusCode;
use roomcast::seconds::Seconds;
use roomcast::sources::modeldata::seed::{SeedArgs, seed_modeldata};
use serde_json::Value;
use tokio_postgres::Client;

/// Fills `url`'s `modeldata` table (created if missing) with generated rows.
async fn seed(url: &str, groups: usize, rows_per_group: u64) {
    seed_modeldata(&SeedArgs {
        database_url: url.to_string(),
        ssl_root_cert: None,
        table: "modeldata".into(),
        groups,
        rows_per_group,
        step_secs: 1.0,
        seed: 9,
        no_vacuum: false,
        append: false,
        replace: false,
    })
    .await
    .expect("seed-modeldata");
}

async fn server(url: &str, interval: f64) -> TestServer {
    let url = url.to_string();
    TestServer::start(move |c| {
        c.modeldata.database_url = Some(url);
        c.modeldata.interval = Seconds::from_secs_f64(interval);
    })
    .await
}

/// The ids seed 000 means to send for `group`: rows at positions
/// `round(k·(n−1)/499)` in `created_at` order, computed independently in SQL.
async fn expected_ids(client: &Client, group: &str, points: i64) -> Vec<i64> {
    client
        .query(
            "WITH r AS (SELECT id::int8 AS id, row_number() OVER (ORDER BY created_at, id) - 1 AS pos, \
                               count(*) OVER () AS n \
                        FROM modeldata WHERE display_name = $1) \
             SELECT id FROM r WHERE n <= $2 OR pos IN ( \
                 SELECT round(k * (n - 1)::numeric / ($2 - 1)) FROM generate_series(0, $2 - 1) k) \
             ORDER BY pos",
            &[&group, &points],
        )
        .await
        .expect("reference query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `(column, type)` of the table, to check roomcast did not alter it.
async fn columns(client: &Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_name = 'modeldata' ORDER BY column_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn ids(group: &Value) -> Vec<i64> {
    group["data_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn seeded_table_streams_500_evenly_spread_points_per_group() {
    let db = TestDb::create().await;
    seed(&db.url, 3, 2_003).await;
    let server = server(&db.url, 60.0).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    let initial = recv_json(&mut ws).await;
    assert_eq!(initial["type"], "initial_modeldata", "{initial}");
    assert_eq!(initial["total_groups"], 3);
    let client = db.client().await;
    for name in ["AI_Model_Alpha", "AI_Model_Beta", "AI_Model_Gamma"] {
        let group = &initial["data"][name];
        assert_eq!(group["total_points"], 500, "{name}");
        assert_eq!(ids(group), expected_ids(&client, name, 500).await, "{name}");
        let latest: String = client
            .query_one(
                "SELECT to_char(max(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
                 FROM modeldata WHERE display_name = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(group["latest_timestamp"], latest.as_str());
    }
}

#[tokio::test]
async fn groups_smaller_than_500_rows_send_every_row_in_time_order() {
    let db = TestDb::create().await;
    seed(&db.url, 1, 1_000).await;
    let client = db.client().await;
    // Inserted out of time order: the stream orders by created_at.
    client
        .batch_execute(
            "INSERT INTO modeldata (display_name, account_value, return_value, total_pnl, fees, trades, created_at) VALUES
               ('tiny', 3, 0, 0, 0, 1, '2025-10-24 10:00:03+00'),
               ('tiny', 1, 0, 0, 0, 1, '2025-10-24 10:00:01+00'),
               ('tiny', 2, NULL, NULL, NULL, NULL, '2025-10-24 10:00:02+00')",
        )
        .await
        .unwrap();
    let server = server(&db.url, 60.0).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    let initial = recv_json(&mut ws).await;
    let tiny = &initial["data"]["tiny"];
    assert_eq!(tiny["total_points"], 3);
    let values: Vec<f64> = tiny["data_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["account_value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [1.0, 2.0, 3.0]);
    assert_eq!(tiny["data_points"][1]["total_pnl"], Value::Null);
    assert_eq!(tiny["latest_timestamp"], "2025-10-24T10:00:03.000Z");
    assert_eq!(initial["data"]["AI_Model_Alpha"]["total_points"], 500);
}

#[tokio::test]
async fn a_table_with_numeric_timestamp_and_varchar_columns_is_read_unaltered() {
    let db = TestDb::create().await;
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE modeldata (
                 id serial PRIMARY KEY,
                 display_name varchar(64),
                 account_value numeric(14,2),
                 return_value numeric,
                 total_pnl numeric(14,2),
                 fees numeric(10,2),
                 trades integer,
                 created_at timestamp without time zone);
             INSERT INTO modeldata (display_name, account_value, return_value, total_pnl, fees, trades, created_at)
             SELECT 'M' || (g % 2), 100000.50 + g, 0.15, 15000.25, 125.00, g, timestamp '2025-10-24 10:00:00' + g * interval '1 second'
             FROM generate_series(0, 1999) g;",
        )
        .await
        .unwrap();
    let before = columns(&client).await;
    let server = server(&db.url, 60.0).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    let initial = recv_json(&mut ws).await;
    assert_eq!(initial["total_groups"], 2, "{initial}");
    let m0 = &initial["data"]["M0"];
    assert_eq!(m0["total_points"], 500);
    assert_eq!(ids(m0), expected_ids(&client, "M0", 500).await);
    let first = &m0["data_points"][0];
    assert_eq!(first["account_value"], 100000.5);
    assert_eq!(first["return_value"], 0.15);
    assert_eq!(first["fees"], 125.0);
    assert_eq!(first["created_at"], "2025-10-24T10:00:00.000Z");
    assert_eq!(m0["latest_timestamp"], "2025-10-24T10:33:18.000Z");
    assert_eq!(columns(&client).await, before, "roomcast altered the table");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM modeldata", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2000);
}

#[tokio::test]
async fn rows_inserted_while_connected_appear_in_the_next_update() {
    let db = TestDb::create().await;
    seed(&db.url, 2, 800).await;
    let server = server(&db.url, 0.3).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    assert_eq!(recv_json(&mut ws).await["type"], "initial_modeldata");
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO modeldata (display_name, account_value, return_value, total_pnl, fees, trades, created_at) VALUES
               ('AI_Model_Alpha', 123456.78, 0.23, 23456.78, 1, 99, now() + interval '1 hour'),
               ('Newcomer', 100000, 0, 0, 0, 0, now())",
        )
        .await
        .unwrap();
    let update = recv_until(&mut ws, |m| {
        m["type"] == "modeldata_update" && m["data"]["Newcomer"].is_object()
    })
    .await;
    let alpha = &update["data"]["AI_Model_Alpha"];
    let last = alpha["data_points"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["account_value"], 123456.78);
    assert_eq!(alpha["latest_timestamp"], last["created_at"]);
    assert_eq!(alpha["total_points"], 500);
    assert_eq!(update["total_groups"], 3);
    assert_eq!(update["data"]["Newcomer"]["total_points"], 1);
}

#[tokio::test]
async fn time_range_and_point_count_are_applied_in_the_database() {
    let db = TestDb::create().await;
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE modeldata (id bigserial PRIMARY KEY, display_name text, account_value float8,
                 return_value float8, total_pnl float8, fees float8, trades int, created_at timestamptz);
             INSERT INTO modeldata (display_name, account_value, return_value, total_pnl, fees, trades, created_at)
             SELECT 'M', g, 0, 0, 0, g, timestamptz '2025-10-24 00:00:00+00' + g * interval '1 minute'
             FROM generate_series(0, 9999) g;",
        )
        .await
        .unwrap();
    let server = server(&db.url, 60.0).await;
    // 10:00 through 11:00 inclusive: rows 600..=660, 61 rows.
    let mut ws = server
        .ws_connect(
            "/ws/modeldata-stream?points=7&from=2025-10-24T10:00:00Z&to=2025-10-24T11:00:00Z",
        )
        .await;
    let initial = recv_json(&mut ws).await;
    let values: Vec<f64> = initial["data"]["M"]["data_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["account_value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [600.0, 610.0, 620.0, 630.0, 640.0, 650.0, 660.0]);

    let mut ws = server
        .ws_connect("/ws/modeldata-stream?points=50&sampler=lttb&from=2025-10-24T10:00:00Z")
        .await;
    let initial = recv_json(&mut ws).await;
    let points = initial["data"]["M"]["data_points"].as_array().unwrap();
    assert_eq!(points.len(), 50);
    assert_eq!(points[0]["account_value"], 600.0);
    assert_eq!(points[49]["account_value"], 9999.0);
}

#[tokio::test]
async fn database_outage_keeps_clients_and_recovers_on_its_own() {
    let mut pg = PgInstance::start();
    let admin = connect(&pg.url()).await;
    admin.batch_execute("CREATE DATABASE md").await.unwrap();
    drop(admin);
    let url = pg.url_for("md");
    seed(&url, 2, 600).await;
    let server = server(&url, 0.3).await;
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    assert_eq!(recv_json(&mut ws).await["type"], "initial_modeldata");
    assert_eq!(server.http_get("/ready").await.0, StatusCode::OK);

    pg.stop();
    let status = recv_until(&mut ws, |m| m["type"] == "modeldata_status").await;
    assert_eq!(status["status"], "degraded", "{status}");
    assert!(
        status["error"].as_str().unwrap().contains("database"),
        "{status}"
    );
    assert!(status["last_update"].is_string());
    let (code, ready) = server.http_get("/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["modeldata"]["ready"], false);
    // The connection stays open and served.
    send_json(&mut ws, &serde_json::json!({"hello": 1})).await;
    assert_eq!(
        recv_until(&mut ws, |m| m["type"] == "echo").await["message"],
        "{\"hello\":1}"
    );
    // A client joining during the outage gets the last good data and the status.
    let mut late = server.ws_connect("/ws/modeldata-stream").await;
    assert_eq!(recv_json(&mut late).await["type"], "initial_modeldata");
    assert_eq!(recv_json(&mut late).await["status"], "degraded");

    pg.restart();
    let ok = recv_until(&mut ws, |m| m["type"] == "modeldata_status").await;
    assert_eq!(ok["status"], "ok", "{ok}");
    let update = recv_json(&mut ws).await;
    assert_eq!(update["type"], "modeldata_update", "{update}");
    assert_eq!(update["total_groups"], 2);
    assert_eq!(server.http_get("/ready").await.0, StatusCode::OK);
}

#[tokio::test]
async fn database_down_at_start_is_retried_until_it_comes_up() {
    let mut pg = PgInstance::start();
    let admin = connect(&pg.url()).await;
    admin.batch_execute("CREATE DATABASE md").await.unwrap();
    drop(admin);
    let url = pg.url_for("md");
    seed(&url, 2, 600).await;
    pg.stop();

    let server = server(&url, 0.3).await;
    let (code, ready) = server.http_get("/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    let mut ws = server.ws_connect("/ws/modeldata-stream").await;
    let status = recv_json(&mut ws).await;
    assert_eq!(status["type"], "modeldata_status", "{status}");
    assert_eq!(status["status"], "degraded");
    assert_eq!(status["last_update"], Value::Null);

    pg.restart();
    recv_until(&mut ws, |m| {
        m["type"] == "modeldata_status" && m["status"] == "ok"
    })
    .await;
    // Nothing was sent before: the first data is the initial message.
    let initial = recv_json(&mut ws).await;
    assert_eq!(initial["type"], "initial_modeldata", "{initial}");
    assert_eq!(initial["total_groups"], 2);
    assert_eq!(server.http_get("/ready").await.0, StatusCode::OK);
}
