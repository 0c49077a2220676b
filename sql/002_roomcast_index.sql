-- The one index roomcast needs on a modeldata table: groups in time order,
-- with `id` breaking ties. roomcast creates it at start unless
-- MODELDATA_CREATE_INDEX=off (`concurrently` builds it without blocking
-- writers). Run this yourself to control when it is built; the name matches
-- roomcast's, so roomcast then finds it and does nothing. Idempotent.
CREATE INDEX IF NOT EXISTS modeldata_roomcast_group_time_idx
    ON modeldata (display_name, created_at, id);
-- On a busy table, instead (outside a transaction):
-- CREATE INDEX CONCURRENTLY IF NOT EXISTS modeldata_roomcast_group_time_idx
--     ON modeldata (display_name, created_at, id);
