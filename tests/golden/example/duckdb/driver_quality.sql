-- fsql point-in-time training query: driver_quality
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: driver_hourly_stats__conv_rate, driver_hourly_stats__acc_rate, driver_hourly_stats__avg_daily_trips, driver_hourly_stats__acc_minus_conv, driver_profile__vehicle_type, driver_profile__seats, driver_profile__driver_rating, driver_profile__is_xl, driver_trip_windows__completed_trips_1d, driver_trip_windows__completed_trips_7d, driver_trip_windows__riders_served_7d
WITH "spine" /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM spine
), "driver_hourly_stats__rows" /* driver_hourly_stats: feature rows from source 'driver_stats' */ AS (
  SELECT
    "driver_id",
    "event_ts" AS "_fsql_event_ts",
    "created_ts" AS "_fsql_created_ts",
    "conv_rate" AS "driver_hourly_stats__conv_rate",
    "acc_rate" AS "driver_hourly_stats__acc_rate",
    "avg_daily_trips" AS "driver_hourly_stats__avg_daily_trips",
    CAST("acc_rate" - "conv_rate" AS DOUBLE) AS "driver_hourly_stats__acc_minus_conv"
  FROM READ_PARQUET('data/driver_stats.parquet')
  WHERE
    NOT "driver_id" IS NULL AND NOT "event_ts" IS NULL
), "driver_profile__rows" /* driver_profile: feature rows from source 'drivers' */ AS (
  SELECT
    "driver_id",
    "updated_at" AS "_fsql_event_ts",
    "vehicle_type" AS "driver_profile__vehicle_type",
    "seats" AS "driver_profile__seats",
    "rating" AS "driver_profile__driver_rating",
    CAST("seats" >= 6 AS BOOLEAN) AS "driver_profile__is_xl"
  FROM READ_CSV('data/drivers.csv')
  WHERE
    NOT "driver_id" IS NULL AND NOT "updated_at" IS NULL
), "driver_trip_windows__rows" /* driver_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    "driver_id",
    "completed_at" AS "_fsql_event_ts",
    CAST("rider_id" AS BIGINT) AS "_fsql_value_1"
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
    NOT "driver_id" IS NULL AND NOT "completed_at" IS NULL
), "driver_trip_windows__ends" /* driver_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    "driver_id",
    "_fsql_ts",
    "_fsql_end",
    "_fsql_end" - INTERVAL 1 DAY AS "_fsql_from_86400s",
    "_fsql_end" - INTERVAL 7 DAY AS "_fsql_from_604800s"
  FROM (
    SELECT DISTINCT
      "spine"."driver_id",
      CAST("spine"."event_timestamp" AS TIMESTAMPTZ) AS "_fsql_ts",
      CAST("spine"."event_timestamp" AS TIMESTAMPTZ) - INTERVAL ((
        EPOCH_US(CAST("spine"."event_timestamp" AS TIMESTAMPTZ)) % 3600000000 + 3600000000
      ) % 3600000000) MICROSECOND AS "_fsql_end"
    FROM "spine"
    WHERE
      NOT "spine"."driver_id" IS NULL AND NOT "spine"."event_timestamp" IS NULL
  ) AS "spine_times"
), "driver_trip_windows__pairs" /* driver_trip_windows: each spine time with the rows of its widest window, one range join */ AS (
  SELECT
    "ends"."driver_id",
    "ends"."_fsql_ts",
    "ends"."_fsql_from_86400s",
    "ends"."_fsql_from_604800s",
    "rows"."_fsql_event_ts" AS "_fsql_event_ts",
    "rows"."_fsql_value_1"
  FROM "driver_trip_windows__ends" AS "ends"
  INNER JOIN "driver_trip_windows__rows" AS "rows"
    ON "rows"."driver_id" = "ends"."driver_id"
    AND "rows"."_fsql_event_ts" >= "ends"."_fsql_from_604800s"
    AND "rows"."_fsql_event_ts" < "ends"."_fsql_end"
), "driver_trip_windows__windows" /* driver_trip_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    "pairs"."driver_id",
    "pairs"."_fsql_ts",
    CAST(COUNT(CASE WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_86400s" THEN 1 END) AS BIGINT) AS "completed_trips_1d",
    CAST(COUNT(CASE WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_604800s" THEN 1 END) AS BIGINT) AS "completed_trips_7d",
    CAST(COUNT(
      DISTINCT CASE
        WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_604800s"
        THEN "pairs"."_fsql_value_1"
      END
    ) AS BIGINT) AS "riders_served_7d"
  FROM "driver_trip_windows__pairs" AS "pairs"
  GROUP BY
    "pairs"."driver_id",
    "pairs"."_fsql_ts"
)
SELECT
  "spine".*,
  CASE
    WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 2 DAY
    )
    THEN "driver_hourly_stats"."driver_hourly_stats__conv_rate"
  END AS "driver_hourly_stats__conv_rate",
  CASE
    WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 2 DAY
    )
    THEN "driver_hourly_stats"."driver_hourly_stats__acc_rate"
  END AS "driver_hourly_stats__acc_rate",
  CASE
    WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 2 DAY
    )
    THEN "driver_hourly_stats"."driver_hourly_stats__avg_daily_trips"
  END AS "driver_hourly_stats__avg_daily_trips",
  CASE
    WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 2 DAY
    )
    THEN "driver_hourly_stats"."driver_hourly_stats__acc_minus_conv"
  END AS "driver_hourly_stats__acc_minus_conv",
  "driver_profile"."driver_profile__vehicle_type" AS "driver_profile__vehicle_type",
  "driver_profile"."driver_profile__seats" AS "driver_profile__seats",
  "driver_profile"."driver_profile__driver_rating" AS "driver_profile__driver_rating",
  "driver_profile"."driver_profile__is_xl" AS "driver_profile__is_xl",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("driver_trip_windows"."completed_trips_1d", 0)
  END AS "driver_trip_windows__completed_trips_1d",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("driver_trip_windows"."completed_trips_7d", 0)
  END AS "driver_trip_windows__completed_trips_7d",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("driver_trip_windows"."riders_served_7d", 0)
  END AS "driver_trip_windows__riders_served_7d"
FROM "spine"
/* driver_hourly_stats: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "driver_hourly_stats__rows" AS "driver_hourly_stats"
  ON "spine"."driver_id" = "driver_hourly_stats"."driver_id"
  AND CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN {'e': "spine"."event_timestamp", 'c': CAST('infinity' AS TIMESTAMPTZ)}
  END >= {'e': "driver_hourly_stats"."_fsql_event_ts", 'c': COALESCE("driver_hourly_stats"."_fsql_created_ts", CAST('-infinity' AS TIMESTAMPTZ))}
/* driver_profile: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "driver_profile__rows" AS "driver_profile"
  ON "spine"."driver_id" = "driver_profile"."driver_id"
  AND "spine"."event_timestamp" >= "driver_profile"."_fsql_event_ts"
/* driver_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN "driver_trip_windows__windows" AS "driver_trip_windows"
  ON "driver_trip_windows"."driver_id" = "spine"."driver_id"
  AND "driver_trip_windows"."_fsql_ts" = CAST("spine"."event_timestamp" AS TIMESTAMPTZ)
