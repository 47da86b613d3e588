-- fsql point-in-time training query: driver_quality
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: driver_hourly_stats__conv_rate, driver_hourly_stats__acc_rate, driver_hourly_stats__avg_daily_trips, driver_hourly_stats__acc_minus_conv, driver_profile__vehicle_type, driver_profile__seats, driver_profile__driver_rating, driver_profile__is_xl
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
  "driver_profile"."driver_profile__is_xl" AS "driver_profile__is_xl"
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
