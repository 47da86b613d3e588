-- fsql point-in-time training query: features_rider_driver_affinity_zone_demand
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: zone_pressure, trips_together, last_rating
WITH "spine" /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM (
    SELECT
      rider_id,
      driver_id,
      zone_id,
      requested_at AS ts
    FROM analytics.requests
  ) AS "spine_query"
), "zone_demand__rows" /* zone_demand: feature rows from source 'zone_demand' */ AS (
  SELECT
    "zone_id",
    "window_end" AS "_fsql_event_ts",
    CAST("requests" / GREATEST("idle_drivers", 1) AS DOUBLE) AS "zone_pressure"
  FROM READ_PARQUET('data/zone_demand.parquet')
  WHERE
    NOT "zone_id" IS NULL AND NOT "window_end" IS NULL
), "rider_driver_affinity__rows" /* rider_driver_affinity: feature rows from source 'rider_driver_pairs' */ AS (
  SELECT
    "rider_id",
    "driver_id",
    "completed_at" AS "_fsql_event_ts",
    CAST("trips_together" AS BIGINT) AS "trips_together",
    CAST("last_rating" AS BIGINT) AS "last_rating"
  FROM (
    SELECT
      rider_id,
      driver_id,
      completed_at,
      COUNT(*) OVER pair AS trips_together,
      rating_by_rider AS last_rating
    FROM READ_PARQUET('data/trips.parquet')
    WHERE
      status = 'completed'
    WINDOW pair AS (PARTITION BY rider_id, driver_id ORDER BY completed_at, trip_id)
  ) AS "rider_driver_pairs"
  WHERE
    NOT "rider_id" IS NULL AND NOT "driver_id" IS NULL AND NOT "completed_at" IS NULL
)
SELECT
  "spine".*,
  CASE
    WHEN "zone_demand"."_fsql_event_ts" >= (
      "spine"."ts" - INTERVAL 1 HOUR
    )
    THEN "zone_demand"."zone_pressure"
  END AS "zone_pressure",
  CASE
    WHEN "rider_driver_affinity"."_fsql_event_ts" >= (
      "spine"."ts" - INTERVAL 90 DAY
    )
    THEN "rider_driver_affinity"."trips_together"
  END AS "trips_together",
  CASE
    WHEN "rider_driver_affinity"."_fsql_event_ts" >= (
      "spine"."ts" - INTERVAL 90 DAY
    )
    THEN "rider_driver_affinity"."last_rating"
  END AS "last_rating"
FROM "spine"
/* zone_demand: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "zone_demand__rows" AS "zone_demand"
  ON "spine"."zone_id" = "zone_demand"."zone_id"
  AND "spine"."ts" >= "zone_demand"."_fsql_event_ts"
/* rider_driver_affinity: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "rider_driver_affinity__rows" AS "rider_driver_affinity"
  ON "spine"."rider_id" = "rider_driver_affinity"."rider_id"
  AND "spine"."driver_id" = "rider_driver_affinity"."driver_id"
  AND "spine"."ts" >= "rider_driver_affinity"."_fsql_event_ts"
