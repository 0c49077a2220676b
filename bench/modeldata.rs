//! Seed 000's resampling SQL against roomcast's, on the same PostgreSQL data.
//!
//! ```text
//! roomcast seed-modeldata --database-url $DATABASE_URL --groups 2 --rows-per-group 10000000
//! DATABASE_URL=postgres://… cargo bench --bench modeldata
//! ```
//!
//! Reports (medians of warm repeats): the seed's query for the largest group;
//! roomcast's one-time ladder build; the refresh every broadcast does (new
//! rows only); and sampling 500 points per group — one group alone, and all
//! groups as a broadcast does. Without `DATABASE_URL` it says so and exits.

use std::time::{Duration, Instant};

use roomcast::sources::modeldata::database_url::DatabaseUrl;
use roomcast::sources::modeldata::postgres::{IndexMode, PgStore};
use roomcast::sources::modeldata::resample::even_positions;
use roomcast::sources::modeldata::{FeedOptions, Store, store};
use tokio_postgres::NoTls;

/// seed 000's query, verbatim but for the bind parameter.
const SEED_SQL: &str = "
WITH ranked_data AS (
    SELECT
        id, display_name, account_value, return_value, total_pnl, fees, trades, created_at,
        ROW_NUMBER() OVER (ORDER BY created_at) as row_num,
        COUNT(*) OVER () as total_rows
    FROM modeldata
    WHERE display_name = $1
    ORDER BY created_at
),
sampled_indices AS (
    SELECT
        CASE
            WHEN total_rows <= 500 THEN row_num
            ELSE CAST(ROUND((row_num - 1) * 499.0 / (total_rows - 1)) + 1 AS INTEGER)
        END as sample_index
    FROM ranked_data
    WHERE total_rows > 0
),
final_sample AS (
    SELECT DISTINCT sample_index
    FROM sampled_indices
    ORDER BY sample_index
    LIMIT 500
)
SELECT rd.*
FROM ranked_data rd
INNER JOIN final_sample fs ON rd.row_num = fs.sample_index
ORDER BY rd.created_at";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> (Duration, Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut last = f().await; // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        last = f().await;
        times.push(started.elapsed());
    }
    let max = *times.iter().max().unwrap();
    (median(times), max, last)
}

#[tokio::main]
async fn main() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!(
            "modeldata bench: set DATABASE_URL (and seed it with `roomcast seed-modeldata`); skipped"
        );
        return;
    };
    let seed_runs: usize = std::env::var("SEED_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let groups = client
        .query(
            "SELECT display_name, count(*) FROM modeldata GROUP BY 1 ORDER BY 2 DESC, 1",
            &[],
        )
        .await
        .expect("count groups");
    let (largest, rows): (String, i64) = (groups[0].get(0), groups[0].get(1));
    let total: i64 = groups.iter().map(|r| r.get::<_, i64>(1)).sum();
    println!(
        "data: {} groups, {total} rows; largest group {largest} with {rows} rows",
        groups.len()
    );

    // SEED_RUNS=0 skips the seed's query (seconds per run on large groups).
    let seed_median = if seed_runs == 0 {
        Duration::ZERO
    } else {
        let (seed_median, seed_max, seed_rows) = time(seed_runs, || async {
            client
                .query(SEED_SQL, &[&largest])
                .await
                .expect("seed query")
                .len()
        })
        .await;
        println!(
            "seed 000 SQL, one group:          median {} (max {}, {seed_runs} warm runs) -> {seed_rows} rows",
            ms(seed_median),
            ms(seed_max)
        );
        seed_median
    };

    let mut pg = PgStore::new(
        &DatabaseUrl::parse(&url, None).expect("DATABASE_URL"),
        "modeldata",
        4,
        IndexMode::Create,
    )
    .expect("store");
    let started = Instant::now();
    pg.refresh().await.expect("first refresh");
    println!(
        "roomcast first refresh (index + ladders, once per process): {}",
        ms(started.elapsed())
    );
    let mut store = Store::Postgres(Box::new(pg));

    let mut refreshes = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        store.refresh().await.expect("refresh");
        refreshes.push(started.elapsed());
    }
    let refresh_max = *refreshes.iter().max().unwrap();
    let refresh_median = median(refreshes);
    println!(
        "roomcast refresh per broadcast:    median {} (max {}, 20 runs)",
        ms(refresh_median),
        ms(refresh_max)
    );

    let options = FeedOptions::default();
    let (all_median, all_max, sampled) = time(50, || async {
        store::sample(&store, &options).await.expect("sample")
    })
    .await;
    let points: usize = sampled.iter().map(|g| g.points.len()).sum();
    println!(
        "roomcast sample, all {} groups:     median {} (max {}, 50 runs) -> {points} points",
        sampled.len(),
        ms(all_median),
        ms(all_max)
    );

    // One group alone: the figure comparable with the seed's query.
    let Store::Postgres(pg) = &store else {
        unreachable!()
    };
    let span = pg
        .spans(None, None)
        .await
        .expect("spans")
        .into_iter()
        .find(|s| *s.name == *largest)
        .expect("largest group");
    let request = [(span.name.clone(), even_positions(span.hi - span.lo, 500))];
    let (one_median, one_max, one) = time(50, || async {
        pg.rows_at(&request).await.expect("rows_at")
    })
    .await;
    println!(
        "roomcast sample, one group:        median {} (max {}, 50 runs) -> {} points",
        ms(one_median),
        ms(one_max),
        one[0].len()
    );
    let per_group = one_median;
    println!(
        "speed-up, seed SQL vs roomcast sample of the same group: {:.0}x",
        seed_median.as_secs_f64() / per_group.as_secs_f64()
    );
}
