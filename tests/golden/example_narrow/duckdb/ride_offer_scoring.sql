-- fsql point-in-time training query: ride_offer_scoring
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: trips_30d, acc_rate, spend_per_trip_30d, fare_vs_usual, log_fare, driver_keenness, pickup_wait_s, is_big_fare
WITH "spine" /* spine: the rows asked for, each kept once, labels included */ AS MATERIALIZED (
  SELECT
    *,
    ROW_NUMBER() OVER () AS "_fsql_spine_row"
  FROM spine
), "rider_trip_windows__rows" /* rider_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    "rider_id",
    "completed_at" AS "_fsql_event_ts",
    CAST("fare" AS DOUBLE) AS "_fsql_value_1"
  FROM (
    /* Completed trips of at least 0.5 km, as events at the time they completed: */
    /* a trip's outcome and fare are known only then, so windows over requested_at would leak. */
    SELECT
      trip_id,
      rider_id,
      driver_id,
      zone_id,
      completed_at,
      fare,
      rating_by_rider
    FROM READ_PARQUET('data/trips.parquet')
    WHERE
      status = 'completed' AND distance_km >= 0.5
  ) AS "completed_trips"
  WHERE
    NOT "rider_id" IS NULL AND NOT "completed_at" IS NULL
), "driver_hourly_stats__rows" /* driver_hourly_stats: feature rows from source 'driver_stats' */ AS (
  SELECT
    "driver_id",
    "event_ts" AS "_fsql_event_ts",
    "created_ts" AS "_fsql_created_ts",
    "acc_rate" AS "acc_rate",
    "conv_rate" AS "_fsql_in_1"
  FROM READ_PARQUET('data/driver_stats.parquet')
  WHERE
    NOT "driver_id" IS NULL AND NOT "event_ts" IS NULL
), "rider_trip_windows__ends" /* rider_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    "rider_id",
    "_fsql_ts",
    "_fsql_end",
    "_fsql_end" - INTERVAL 30 DAY AS "_fsql_from_2592000s"
  FROM (
    SELECT DISTINCT
      "spine"."rider_id",
      CAST("spine"."event_timestamp" AS TIMESTAMPTZ) AS "_fsql_ts",
      CAST("spine"."event_timestamp" AS TIMESTAMPTZ) - INTERVAL ((
        EPOCH_US(CAST("spine"."event_timestamp" AS TIMESTAMPTZ)) % 3600000000 + 3600000000
      ) % 3600000000) MICROSECOND AS "_fsql_end"
    FROM "spine"
    WHERE
      NOT "spine"."rider_id" IS NULL AND NOT "spine"."event_timestamp" IS NULL
  ) AS "spine_times"
), "rider_trip_windows__pairs" /* rider_trip_windows: each spine time with the rows of its widest window, one range join */ AS (
  SELECT
    "ends"."rider_id",
    "ends"."_fsql_ts",
    "ends"."_fsql_from_2592000s",
    "rows"."_fsql_event_ts" AS "_fsql_event_ts",
    "rows"."_fsql_value_1"
  FROM "rider_trip_windows__ends" AS "ends"
  INNER JOIN "rider_trip_windows__rows" AS "rows"
    ON "rows"."rider_id" = "ends"."rider_id"
    AND "rows"."_fsql_event_ts" >= "ends"."_fsql_from_2592000s"
    AND "rows"."_fsql_event_ts" < "ends"."_fsql_end"
), "rider_trip_windows__windows" /* rider_trip_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    "pairs"."rider_id",
    "pairs"."_fsql_ts",
    CAST(COUNT(CASE WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_2592000s" THEN 1 END) AS BIGINT) AS "trips_30d",
    CAST(SUM(
      CASE
        WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_2592000s"
        THEN "pairs"."_fsql_value_1"
      END
    ) AS DOUBLE) AS "spend_30d"
  FROM "rider_trip_windows__pairs" AS "pairs"
  GROUP BY
    "pairs"."rider_id",
    "pairs"."_fsql_ts"
), "driver_hourly_stats__match" /* driver_hourly_stats: each spine row's latest row at or before its timestamp, per key, by spine row id */ AS (
  SELECT
    "spine"."_fsql_spine_row",
    CASE
      WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
        "spine"."event_timestamp" - INTERVAL 2 DAY
      )
      THEN "driver_hourly_stats"."acc_rate"
    END AS "acc_rate",
    CASE
      WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
        "spine"."event_timestamp" - INTERVAL 2 DAY
      )
      THEN "driver_hourly_stats"."_fsql_in_1"
    END AS "_fsql_in_1"
  FROM "spine"
  /* driver_hourly_stats: latest row at or before the spine's timestamp, per key */
  ASOF LEFT JOIN "driver_hourly_stats__rows" AS "driver_hourly_stats"
    ON "spine"."driver_id" = "driver_hourly_stats"."driver_id"
    AND CASE
      WHEN NOT "spine"."event_timestamp" IS NULL
      THEN {'e': "spine"."event_timestamp", 'c': CAST('infinity' AS TIMESTAMPTZ)}
    END >= {'e': "driver_hourly_stats"."_fsql_event_ts", 'c': COALESCE("driver_hourly_stats"."_fsql_created_ts", CAST('-infinity' AS TIMESTAMPTZ))}
)
SELECT
  "spine".*
  EXCLUDE ("_fsql_spine_row"),
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("rider_trip_windows"."trips_30d", 0)
  END AS "trips_30d",
  "driver_hourly_stats"."acc_rate" AS "acc_rate",
  CAST(CAST("rider_trip_windows"."spend_30d" AS DOUBLE) / NULLIF(
    CAST(CASE
      WHEN NOT "spine"."event_timestamp" IS NULL
      THEN COALESCE("rider_trip_windows"."trips_30d", 0)
    END AS DOUBLE),
    0
  ) AS DOUBLE) AS "spend_per_trip_30d",
  CAST(CAST(CAST("spine"."offered_fare" AS DOUBLE) AS DOUBLE) / NULLIF(
    CAST((
      CAST("rider_trip_windows"."spend_30d" AS DOUBLE) / NULLIF(
        CAST(CASE
          WHEN NOT "spine"."event_timestamp" IS NULL
          THEN COALESCE("rider_trip_windows"."trips_30d", 0)
        END AS DOUBLE),
        0
      )
    ) AS DOUBLE),
    0
  ) AS DOUBLE) AS "fare_vs_usual",
  CAST(CASE
    WHEN CAST("spine"."offered_fare" AS DOUBLE) > 0
    THEN LN(CAST(CAST("spine"."offered_fare" AS DOUBLE) AS DOUBLE))
  END AS DOUBLE) AS "log_fare",
  CAST(GREATEST(
    COALESCE("driver_hourly_stats"."acc_rate", "driver_hourly_stats"."_fsql_in_1"),
    COALESCE("driver_hourly_stats"."_fsql_in_1", "driver_hourly_stats"."acc_rate")
  ) AS DOUBLE) AS "driver_keenness",
  CAST((
    CAST((
      EPOCH_US(CAST("spine"."pickup_eta_at" AS TIMESTAMPTZ)) - EPOCH_US(CAST("spine"."offered_at" AS TIMESTAMPTZ))
    ) AS DOUBLE) / 1000000
  ) AS DOUBLE) AS "pickup_wait_s",
  CAST(CASE
    WHEN CAST("spine"."offered_fare" AS DOUBLE) >= 2 * COALESCE(
      CAST("rider_trip_windows"."spend_30d" AS DOUBLE) / NULLIF(
        CAST(CASE
          WHEN NOT "spine"."event_timestamp" IS NULL
          THEN COALESCE("rider_trip_windows"."trips_30d", 0)
        END AS DOUBLE),
        0
      ),
      0
    )
    THEN TRUE
    ELSE FALSE
  END AS BOOLEAN) AS "is_big_fare"
FROM "spine"
/* rider_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN "rider_trip_windows__windows" AS "rider_trip_windows"
  ON "rider_trip_windows"."rider_id" = "spine"."rider_id"
  AND "rider_trip_windows"."_fsql_ts" = CAST("spine"."event_timestamp" AS TIMESTAMPTZ)
/* driver_hourly_stats: its features, by spine row id */
LEFT JOIN "driver_hourly_stats__match" AS "driver_hourly_stats"
  ON "driver_hourly_stats"."_fsql_spine_row" = "spine"."_fsql_spine_row"
