-- The modeldata table of seed 000 (one row per model per tick), as roomcast's
-- `seed-modeldata` command creates it when it is missing. roomcast also reads
-- existing tables with other column types: numeric instead of double
-- precision, timestamp without time zone, varchar display names (see
-- docs/seed000.md). Idempotent.
CREATE TABLE IF NOT EXISTS modeldata (
    id            BIGSERIAL PRIMARY KEY,
    display_name  TEXT NOT NULL,
    account_value DOUBLE PRECISION,
    return_value  DOUBLE PRECISION,
    total_pnl     DOUBLE PRECISION,
    fees          DOUBLE PRECISION,
    trades        INTEGER,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
