-- fsql point-in-time training query: ride_acceptance
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: conv_rate, acc_rate, avg_daily_trips, acc_minus_conv, vehicle_type, driver_rating, trips_7d, trips_30d, spend_7d, spend_30d, avg_rating_given_30d, completed_trips_1d, completed_trips_7d, riders_served_7d, is_premium, trips_together, last_rating, zone_pressure, zone_requests_15m, zone_requests_1h
WITH "spine" /* spine: the rows asked for, each kept once, labels included */ AS MATERIALIZED (
  SELECT
    *,
    ROW_NUMBER() OVER () AS "_fsql_spine_row"
  FROM spine
), "driver_hourly_stats__rows" /* driver_hourly_stats: feature rows from source 'driver_stats' */ AS (
  SELECT
    "driver_id",
    "event_ts" AS "_fsql_event_ts",
    "created_ts" AS "_fsql_created_ts",
    "conv_rate" AS "conv_rate",
    "acc_rate" AS "acc_rate",
    "avg_daily_trips" AS "avg_daily_trips",
    CAST("acc_rate" - "conv_rate" AS DOUBLE) AS "acc_minus_conv"
  FROM READ_PARQUET('data/driver_stats.parquet')
  WHERE
    NOT "driver_id" IS NULL AND NOT "event_ts" IS NULL
), "driver_profile__rows" /* driver_profile: feature rows from source 'drivers' */ AS (
  SELECT
    "driver_id",
    "updated_at" AS "_fsql_event_ts",
    "vehicle_type" AS "vehicle_type",
    "rating" AS "driver_rating"
  FROM READ_CSV('data/drivers.csv')
  WHERE
    NOT "driver_id" IS NULL AND NOT "updated_at" IS NULL
), "rider_trip_windows__rows" /* rider_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    "rider_id",
    "completed_at" AS "_fsql_event_ts",
    CAST("fare" AS DOUBLE) AS "_fsql_value_1",
    CAST("rating_by_rider" AS BIGINT) AS "_fsql_value_2"
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
), "rider_profile__rows" /* rider_profile: feature rows from source 'riders' */ AS (
  SELECT
    "rider_id",
    "signup_at" AS "_fsql_event_ts",
    "is_premium" AS "is_premium"
  FROM READ_CSV('data/riders.csv')
  WHERE
    NOT "rider_id" IS NULL AND NOT "signup_at" IS NULL
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
), "zone_demand__rows" /* zone_demand: feature rows from source 'zone_demand' */ AS (
  SELECT
    "zone_id",
    "window_end" AS "_fsql_event_ts",
    CAST("requests" / GREATEST("idle_drivers", 1) AS DOUBLE) AS "zone_pressure"
  FROM READ_PARQUET('data/zone_demand.parquet')
  WHERE
    NOT "zone_id" IS NULL AND NOT "window_end" IS NULL
), "zone_request_windows__rows" /* zone_request_windows: feature rows from source 'trips' */ AS (
  SELECT
    "zone_id",
    "requested_at" AS "_fsql_event_ts"
  FROM READ_PARQUET('data/trips.parquet')
  WHERE
    NOT "zone_id" IS NULL AND NOT "requested_at" IS NULL
), "driver_hourly_stats__match" /* driver_hourly_stats: each spine row's latest row at or before its timestamp, per key, by spine row id */ AS (
  SELECT
    "spine"."_fsql_spine_row",
    CASE
      WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
        "spine"."event_timestamp" - INTERVAL 2 DAY
      )
      THEN "driver_hourly_stats"."conv_rate"
    END AS "conv_rate",
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
      THEN "driver_hourly_stats"."avg_daily_trips"
    END AS "avg_daily_trips",
    CASE
      WHEN "driver_hourly_stats"."_fsql_event_ts" >= (
        "spine"."event_timestamp" - INTERVAL 2 DAY
      )
      THEN "driver_hourly_stats"."acc_minus_conv"
    END AS "acc_minus_conv"
  FROM "spine"
  /* driver_hourly_stats: latest row at or before the spine's timestamp, per key */
  ASOF LEFT JOIN "driver_hourly_stats__rows" AS "driver_hourly_stats"
    ON "spine"."driver_id" = "driver_hourly_stats"."driver_id"
    AND CASE
      WHEN NOT "spine"."event_timestamp" IS NULL
      THEN {'e': "spine"."event_timestamp", 'c': CAST('infinity' AS TIMESTAMPTZ)}
    END >= {'e': "driver_hourly_stats"."_fsql_event_ts", 'c': COALESCE("driver_hourly_stats"."_fsql_created_ts", CAST('-infinity' AS TIMESTAMPTZ))}
), "driver_profile__match" /* driver_profile: each spine row's latest row at or before its timestamp, per key, by spine row id */ AS (
  SELECT
    "spine"."_fsql_spine_row",
    "driver_profile"."vehicle_type" AS "vehicle_type",
    "driver_profile"."driver_rating" AS "driver_rating"
  FROM "spine"
  /* driver_profile: latest row at or before the spine's timestamp, per key */
  ASOF LEFT JOIN "driver_profile__rows" AS "driver_profile"
    ON "spine"."driver_id" = "driver_profile"."driver_id"
    AND "spine"."event_timestamp" >= "driver_profile"."_fsql_event_ts"
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
), "rider_trip_windows__pairs" /* rider_trip_windows: each spine time with the rows of its widest window, one range join */ AS (
  SELECT
    "ends"."rider_id",
    "ends"."_fsql_ts",
    "ends"."_fsql_from_604800s",
    "ends"."_fsql_from_2592000s",
    "rows"."_fsql_event_ts" AS "_fsql_event_ts",
    "rows"."_fsql_value_1",
    "rows"."_fsql_value_2"
  FROM "rider_trip_windows__ends" AS "ends"
  INNER JOIN "rider_trip_windows__rows" AS "rows"
    ON "rows"."rider_id" = "ends"."rider_id"
    AND "rows"."_fsql_event_ts" >= "ends"."_fsql_from_2592000s"
    AND "rows"."_fsql_event_ts" < "ends"."_fsql_end"
), "rider_trip_windows__windows" /* rider_trip_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    "pairs"."rider_id",
    "pairs"."_fsql_ts",
    CAST(COUNT(CASE WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_604800s" THEN 1 END) AS BIGINT) AS "trips_7d",
    CAST(COUNT(CASE WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_2592000s" THEN 1 END) AS BIGINT) AS "trips_30d",
    CAST(SUM(
      CASE
        WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_604800s"
        THEN "pairs"."_fsql_value_1"
      END
    ) AS DOUBLE) AS "spend_7d",
    CAST(SUM(
      CASE
        WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_2592000s"
        THEN "pairs"."_fsql_value_1"
      END
    ) AS DOUBLE) AS "spend_30d",
    CAST(AVG(
      CASE
        WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_2592000s"
        THEN "pairs"."_fsql_value_2"
      END
    ) AS DOUBLE) AS "avg_rating_given_30d"
  FROM "rider_trip_windows__pairs" AS "pairs"
  GROUP BY
    "pairs"."rider_id",
    "pairs"."_fsql_ts"
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
), "rider_profile__match" /* rider_profile: each spine row's latest row at or before its timestamp, per key, by spine row id */ AS (
  SELECT
    "spine"."_fsql_spine_row",
    "rider_profile"."is_premium" AS "is_premium"
  FROM "spine"
  /* rider_profile: latest row at or before the spine's timestamp, per key */
  ASOF LEFT JOIN "rider_profile__rows" AS "rider_profile"
    ON "spine"."rider_id" = "rider_profile"."rider_id"
    AND "spine"."event_timestamp" >= "rider_profile"."_fsql_event_ts"
), "rider_driver_affinity__match" /* rider_driver_affinity: each spine row's latest row at or before its timestamp, per key, by spine row id */ AS (
  SELECT
    "spine"."_fsql_spine_row",
    CASE
      WHEN "rider_driver_affinity"."_fsql_event_ts" >= (
        "spine"."event_timestamp" - INTERVAL 90 DAY
      )
      THEN "rider_driver_affinity"."trips_together"
    END AS "trips_together",
    CASE
      WHEN "rider_driver_affinity"."_fsql_event_ts" >= (
        "spine"."event_timestamp" - INTERVAL 90 DAY
      )
      THEN "rider_driver_affinity"."last_rating"
    END AS "last_rating"
  FROM "spine"
  /* rider_driver_affinity: latest row at or before the spine's timestamp, per key */
  ASOF LEFT JOIN "rider_driver_affinity__rows" AS "rider_driver_affinity"
    ON "spine"."rider_id" = "rider_driver_affinity"."rider_id"
    AND "spine"."driver_id" = "rider_driver_affinity"."driver_id"
    AND "spine"."event_timestamp" >= "rider_driver_affinity"."_fsql_event_ts"
), "zone_demand__match" /* zone_demand: each spine row's latest row at or before its timestamp, per key, by spine row id */ AS (
  SELECT
    "spine"."_fsql_spine_row",
    CASE
      WHEN "zone_demand"."_fsql_event_ts" >= (
        "spine"."event_timestamp" - INTERVAL 1 HOUR
      )
      THEN "zone_demand"."zone_pressure"
    END AS "zone_pressure"
  FROM "spine"
  /* zone_demand: latest row at or before the spine's timestamp, per key */
  ASOF LEFT JOIN "zone_demand__rows" AS "zone_demand"
    ON "spine"."zone_id" = "zone_demand"."zone_id"
    AND "spine"."event_timestamp" >= "zone_demand"."_fsql_event_ts"
), "zone_request_windows__ends" /* zone_request_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    "zone_id",
    "_fsql_ts",
    "_fsql_end",
    "_fsql_end" - INTERVAL 15 MINUTE AS "_fsql_from_900s",
    "_fsql_end" - INTERVAL 1 HOUR AS "_fsql_from_3600s"
  FROM (
    SELECT DISTINCT
      "spine"."zone_id",
      CAST("spine"."event_timestamp" AS TIMESTAMPTZ) AS "_fsql_ts",
      CAST("spine"."event_timestamp" AS TIMESTAMPTZ) - INTERVAL ((
        EPOCH_US(CAST("spine"."event_timestamp" AS TIMESTAMPTZ)) % 900000000 + 900000000
      ) % 900000000) MICROSECOND AS "_fsql_end"
    FROM "spine"
    WHERE
      NOT "spine"."zone_id" IS NULL AND NOT "spine"."event_timestamp" IS NULL
  ) AS "spine_times"
), "zone_request_windows__running" /* zone_request_windows: each row with its key's running totals, ties at one time shared */ AS (
  SELECT
    "zone_id",
    "_fsql_event_ts",
    COUNT(1) OVER (PARTITION BY "zone_id" ORDER BY "_fsql_event_ts") AS "_fsql_count_0"
  FROM "zone_request_windows__rows"
), "zone_request_windows__totals" /* zone_request_windows: per spine keys and ts: totals before the end minus before each start */ AS (
  SELECT
    "ends"."zone_id",
    "ends"."_fsql_ts",
    CAST((
      COALESCE("at_end"."_fsql_count_0", 0) - COALESCE("at_900s"."_fsql_count_0", 0)
    ) AS BIGINT) AS "zone_requests_15m",
    CAST((
      COALESCE("at_end"."_fsql_count_0", 0) - COALESCE("at_3600s"."_fsql_count_0", 0)
    ) AS BIGINT) AS "zone_requests_1h"
  FROM "zone_request_windows__ends" AS "ends"
  ASOF LEFT JOIN "zone_request_windows__running" AS "at_end"
    ON "at_end"."zone_id" = "ends"."zone_id"
    AND "ends"."_fsql_end" > "at_end"."_fsql_event_ts"
  ASOF LEFT JOIN "zone_request_windows__running" AS "at_900s"
    ON "at_900s"."zone_id" = "ends"."zone_id"
    AND "ends"."_fsql_from_900s" > "at_900s"."_fsql_event_ts"
  ASOF LEFT JOIN "zone_request_windows__running" AS "at_3600s"
    ON "at_3600s"."zone_id" = "ends"."zone_id"
    AND "ends"."_fsql_from_3600s" > "at_3600s"."_fsql_event_ts"
)
SELECT
  "spine".*
  EXCLUDE ("_fsql_spine_row"),
  "driver_hourly_stats"."conv_rate" AS "conv_rate",
  "driver_hourly_stats"."acc_rate" AS "acc_rate",
  "driver_hourly_stats"."avg_daily_trips" AS "avg_daily_trips",
  "driver_hourly_stats"."acc_minus_conv" AS "acc_minus_conv",
  "driver_profile"."vehicle_type" AS "vehicle_type",
  "driver_profile"."driver_rating" AS "driver_rating",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("rider_trip_windows"."trips_7d", 0)
  END AS "trips_7d",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("rider_trip_windows"."trips_30d", 0)
  END AS "trips_30d",
  "rider_trip_windows"."spend_7d" AS "spend_7d",
  "rider_trip_windows"."spend_30d" AS "spend_30d",
  "rider_trip_windows"."avg_rating_given_30d" AS "avg_rating_given_30d",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("driver_trip_windows"."completed_trips_1d", 0)
  END AS "completed_trips_1d",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("driver_trip_windows"."completed_trips_7d", 0)
  END AS "completed_trips_7d",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("driver_trip_windows"."riders_served_7d", 0)
  END AS "riders_served_7d",
  "rider_profile"."is_premium" AS "is_premium",
  "rider_driver_affinity"."trips_together" AS "trips_together",
  "rider_driver_affinity"."last_rating" AS "last_rating",
  "zone_demand"."zone_pressure" AS "zone_pressure",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("zone_request_windows__totals"."zone_requests_15m", 0)
  END AS "zone_requests_15m",
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("zone_request_windows__totals"."zone_requests_1h", 0)
  END AS "zone_requests_1h"
FROM "spine"
/* driver_hourly_stats: its features, by spine row id */
LEFT JOIN "driver_hourly_stats__match" AS "driver_hourly_stats"
  ON "driver_hourly_stats"."_fsql_spine_row" = "spine"."_fsql_spine_row"
/* driver_profile: its features, by spine row id */
LEFT JOIN "driver_profile__match" AS "driver_profile"
  ON "driver_profile"."_fsql_spine_row" = "spine"."_fsql_spine_row"
/* rider_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN "rider_trip_windows__windows" AS "rider_trip_windows"
  ON "rider_trip_windows"."rider_id" = "spine"."rider_id"
  AND "rider_trip_windows"."_fsql_ts" = CAST("spine"."event_timestamp" AS TIMESTAMPTZ)
/* driver_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN "driver_trip_windows__windows" AS "driver_trip_windows"
  ON "driver_trip_windows"."driver_id" = "spine"."driver_id"
  AND "driver_trip_windows"."_fsql_ts" = CAST("spine"."event_timestamp" AS TIMESTAMPTZ)
/* rider_profile: its features, by spine row id */
LEFT JOIN "rider_profile__match" AS "rider_profile"
  ON "rider_profile"."_fsql_spine_row" = "spine"."_fsql_spine_row"
/* rider_driver_affinity: its features, by spine row id */
LEFT JOIN "rider_driver_affinity__match" AS "rider_driver_affinity"
  ON "rider_driver_affinity"."_fsql_spine_row" = "spine"."_fsql_spine_row"
/* zone_demand: its features, by spine row id */
LEFT JOIN "zone_demand__match" AS "zone_demand"
  ON "zone_demand"."_fsql_spine_row" = "spine"."_fsql_spine_row"
/* zone_request_windows: counts, sums and avgs for the spine row's keys and ts */
LEFT JOIN "zone_request_windows__totals"
  ON "zone_request_windows__totals"."zone_id" = "spine"."zone_id"
  AND "zone_request_windows__totals"."_fsql_ts" = CAST("spine"."event_timestamp" AS TIMESTAMPTZ)
