-- fsql point-in-time training query: features_rider_trip_windows
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: trips_7d, trips_30d, minutes_7d
WITH "spine" /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM spine
), "rider_trip_windows__rows" /* rider_trip_windows: feature rows from source 'trips' */ AS (
  SELECT
    "rider_id",
    "requested_at" AS "_fsql_event_ts",
    "loaded_at" AS "_fsql_created_ts",
    "status" = 'completed' AS "_fsql_filter_0",
    "minutes" AS "_fsql_value_2"
  FROM analytics.trips
  WHERE
    NOT "rider_id" IS NULL AND NOT "requested_at" IS NULL
), "rider_trip_windows__ends" /* rider_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    "rider_id",
    "_fsql_ts",
    "_fsql_end",
    "_fsql_end" - INTERVAL 7 DAY AS "_fsql_from_604800s",
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
), "rider_trip_windows__running" /* rider_trip_windows: each row with its key's running totals, ties at one time shared */ AS (
  SELECT
    "rider_id",
    "_fsql_event_ts",
    COUNT(CASE WHEN "_fsql_filter_0" THEN 1 END) OVER (PARTITION BY "rider_id" ORDER BY "_fsql_event_ts") AS "_fsql_count_0",
    COUNT("_fsql_value_2") OVER (PARTITION BY "rider_id" ORDER BY "_fsql_event_ts") AS "_fsql_count_2",
    SUM("_fsql_value_2") OVER (PARTITION BY "rider_id" ORDER BY "_fsql_event_ts") AS "_fsql_sum_2"
  FROM "rider_trip_windows__rows"
), "rider_trip_windows__totals" /* rider_trip_windows: per spine keys and ts: totals before the end minus before each start */ AS (
  SELECT
    "ends"."rider_id",
    "ends"."_fsql_ts",
    CAST((
      COALESCE("at_end"."_fsql_count_0", 0) - COALESCE("at_604800s"."_fsql_count_0", 0)
    ) AS BIGINT) AS "trips_7d",
    CAST((
      COALESCE("at_end"."_fsql_count_0", 0) - COALESCE("at_2592000s"."_fsql_count_0", 0)
    ) AS BIGINT) AS "trips_30d",
    CASE
      WHEN (
        COALESCE("at_end"."_fsql_count_2", 0) - COALESCE("at_604800s"."_fsql_count_2", 0)
      ) > 0
      THEN CAST((
        COALESCE("at_end"."_fsql_sum_2", 0) - COALESCE("at_604800s"."_fsql_sum_2", 0)
      ) AS BIGINT)
    END AS "minutes_7d"
  FROM "rider_trip_windows__ends" AS "ends"
  ASOF LEFT JOIN "rider_trip_windows__running" AS "at_end"
    ON "at_end"."rider_id" = "ends"."rider_id"
    AND "ends"."_fsql_end" > "at_end"."_fsql_event_ts"
  ASOF LEFT JOIN "rider_trip_windows__running" AS "at_604800s"
    ON "at_604800s"."rider_id" = "ends"."rider_id"
    AND "ends"."_fsql_from_604800s" > "at_604800s"."_fsql_event_ts"
  ASOF LEFT JOIN "rider_trip_windows__running" AS "at_2592000s"
    ON "at_2592000s"."rider_id" = "ends"."rider_id"
    AND "ends"."_fsql_from_2592000s" > "at_2592000s"."_fsql_event_ts"
)
SELECT
  "spine".*,
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("rider_trip_windows__totals"."trips_7d", 0)
  END AS "trips_7d",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("rider_trip_windows__totals"."trips_30d", 0)
  END AS "trips_30d",
  "rider_trip_windows__totals"."minutes_7d" AS "minutes_7d"
FROM "spine"
/* rider_trip_windows: counts, sums and avgs for the spine row's keys and ts */
LEFT JOIN "rider_trip_windows__totals"
  ON "rider_trip_windows__totals"."rider_id" = "spine"."rider_id"
  AND "rider_trip_windows__totals"."_fsql_ts" = CAST("spine"."event_timestamp" AS TIMESTAMPTZ)
