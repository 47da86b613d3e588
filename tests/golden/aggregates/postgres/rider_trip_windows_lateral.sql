-- fsql point-in-time training query: features_rider_trip_windows
-- dialect postgres, strategy lateral; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: trips_7d, spend_30d, fare_sd_30d
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
    "fare" AS "_fsql_value_1",
    "fare" AS "_fsql_value_3"
  FROM analytics.trips
  WHERE
    NOT "rider_id" IS NULL AND NOT "requested_at" IS NULL
)
SELECT
  "spine".*,
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("rider_trip_windows"."trips_7d", 0)
  END AS "trips_7d",
  "rider_trip_windows"."spend_30d" AS "spend_30d",
  "rider_trip_windows"."fare_sd_30d" AS "fare_sd_30d"
FROM "spine"
LEFT JOIN LATERAL (
  SELECT
    "spine"."rider_id" AS "rider_id",
    CAST("spine"."event_timestamp" AS TIMESTAMPTZ) - (
      INTERVAL '1 MICROSECOND' * (
        (
          CAST(EXTRACT(EPOCH FROM CAST("spine"."event_timestamp" AS TIMESTAMPTZ)) * 1000000 AS BIGINT) % 3600000000 + 3600000000
        ) % 3600000000
      )
    ) AS "_fsql_end",
    CAST("spine"."event_timestamp" AS TIMESTAMPTZ) - (
      INTERVAL '1 MICROSECOND' * (
        (
          CAST(EXTRACT(EPOCH FROM CAST("spine"."event_timestamp" AS TIMESTAMPTZ)) * 1000000 AS BIGINT) % 3600000000 + 3600000000
        ) % 3600000000
      )
    ) - INTERVAL '7 DAY' AS "_fsql_from_604800s",
    CAST("spine"."event_timestamp" AS TIMESTAMPTZ) - (
      INTERVAL '1 MICROSECOND' * (
        (
          CAST(EXTRACT(EPOCH FROM CAST("spine"."event_timestamp" AS TIMESTAMPTZ)) * 1000000 AS BIGINT) % 3600000000 + 3600000000
        ) % 3600000000
      )
    ) - INTERVAL '30 DAY' AS "_fsql_from_2592000s"
) AS "rider_trip_windows__ends"
  ON TRUE
/* rider_trip_windows: the spine row's windows, one range scan of its widest */
LEFT JOIN LATERAL (
  SELECT
    CAST(COUNT(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_604800s"
        AND "rows"."_fsql_filter_0"
        THEN 1
      END
    ) AS BIGINT) AS "trips_7d",
    CAST(SUM(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
        THEN "rows"."_fsql_value_1"
      END
    ) AS DOUBLE PRECISION) AS "spend_30d",
    CAST(STDDEV_SAMP(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
        THEN "rows"."_fsql_value_3"
      END
    ) AS DOUBLE PRECISION) AS "fare_sd_30d"
  FROM "rider_trip_windows__rows" AS "rows"
  WHERE
    "rows"."rider_id" = "rider_trip_windows__ends"."rider_id"
    AND "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
    AND "rows"."_fsql_event_ts" < "rider_trip_windows__ends"."_fsql_end"
) AS "rider_trip_windows"
  ON TRUE
