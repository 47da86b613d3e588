-- fsql point-in-time training query: ride_acceptance
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: conv_rate, acc_rate, avg_daily_trips, acc_minus_conv, vehicle_type, driver_rating, trips_last_day, spend_last_day, avg_rating_given, is_premium, trips_together, last_rating, zone_requests_15m, zone_pressure
WITH "spine" /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
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
), "rider_trip_stats__rows" /* rider_trip_stats: feature rows from source 'rider_daily_trips' */ AS (
  SELECT
    "rider_id",
    "day_end_ts" AS "_fsql_event_ts",
    CAST("trips" AS BIGINT) AS "trips_last_day",
    CAST("spend" AS DOUBLE) AS "spend_last_day",
    CAST("avg_rating_given" AS DOUBLE) AS "avg_rating_given"
  FROM (
    /* One row per rider and day of completed trips of at least 0.5 km. */
    SELECT
      rider_id,
      DATE_TRUNC('DAY', completed_at) + INTERVAL '1' DAY AS day_end_ts,
      COUNT(*) AS trips,
      SUM(fare) AS spend,
      AVG(rating_by_rider) AS avg_rating_given
    FROM READ_PARQUET('data/trips.parquet')
    WHERE
      status = 'completed' AND distance_km >= 0.5
    GROUP BY
      rider_id,
      day_end_ts
  ) AS "rider_daily_trips"
  WHERE
    NOT "rider_id" IS NULL AND NOT "day_end_ts" IS NULL
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
    "requests" AS "zone_requests_15m",
    CAST("requests" / GREATEST("idle_drivers", 1) AS DOUBLE) AS "zone_pressure"
  FROM READ_PARQUET('data/zone_demand.parquet')
  WHERE
    NOT "zone_id" IS NULL AND NOT "window_end" IS NULL
)
SELECT
  "spine".*,
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
  END AS "acc_minus_conv",
  "driver_profile"."vehicle_type" AS "vehicle_type",
  "driver_profile"."driver_rating" AS "driver_rating",
  CASE
    WHEN "rider_trip_stats"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 7 DAY
    )
    THEN "rider_trip_stats"."trips_last_day"
  END AS "trips_last_day",
  CASE
    WHEN "rider_trip_stats"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 7 DAY
    )
    THEN "rider_trip_stats"."spend_last_day"
  END AS "spend_last_day",
  CASE
    WHEN "rider_trip_stats"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 7 DAY
    )
    THEN "rider_trip_stats"."avg_rating_given"
  END AS "avg_rating_given",
  "rider_profile"."is_premium" AS "is_premium",
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
  END AS "last_rating",
  CASE
    WHEN "zone_demand"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 1 HOUR
    )
    THEN "zone_demand"."zone_requests_15m"
  END AS "zone_requests_15m",
  CASE
    WHEN "zone_demand"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 1 HOUR
    )
    THEN "zone_demand"."zone_pressure"
  END AS "zone_pressure"
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
/* rider_trip_stats: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "rider_trip_stats__rows" AS "rider_trip_stats"
  ON "spine"."rider_id" = "rider_trip_stats"."rider_id"
  AND "spine"."event_timestamp" >= "rider_trip_stats"."_fsql_event_ts"
/* rider_profile: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "rider_profile__rows" AS "rider_profile"
  ON "spine"."rider_id" = "rider_profile"."rider_id"
  AND "spine"."event_timestamp" >= "rider_profile"."_fsql_event_ts"
/* rider_driver_affinity: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "rider_driver_affinity__rows" AS "rider_driver_affinity"
  ON "spine"."rider_id" = "rider_driver_affinity"."rider_id"
  AND "spine"."driver_id" = "rider_driver_affinity"."driver_id"
  AND "spine"."event_timestamp" >= "rider_driver_affinity"."_fsql_event_ts"
/* zone_demand: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "zone_demand__rows" AS "zone_demand"
  ON "spine"."zone_id" = "zone_demand"."zone_id"
  AND "spine"."event_timestamp" >= "zone_demand"."_fsql_event_ts"
