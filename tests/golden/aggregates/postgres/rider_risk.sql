-- fsql point-in-time training query: rider_risk
-- dialect postgres, strategy lateral; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: trips_7d, trips_30d, spend_7d, spend_30d, minutes_7d, fare_sd_30d, last_status_1d, rating
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
    "minutes" AS "_fsql_value_2",
    "fare" AS "_fsql_value_3",
    "status" AS "_fsql_value_4"
  FROM analytics.trips
  WHERE
    NOT "rider_id" IS NULL AND NOT "requested_at" IS NULL
), "rider_rating__rows" /* rider_rating: feature rows from source 'ratings' */ AS (
  SELECT
    "rider_id",
    "rated_at" AS "_fsql_event_ts",
    "rating" AS "rating"
  FROM analytics.ratings
  WHERE
    NOT "rider_id" IS NULL AND NOT "rated_at" IS NULL
)
SELECT
  "spine".*,
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
  "rider_trip_windows"."minutes_7d" AS "minutes_7d",
  "rider_trip_windows"."fare_sd_30d" AS "fare_sd_30d",
  "rider_trip_windows"."last_status_1d" AS "last_status_1d",
  "rider_rating"."rating" AS "rating"
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
    ) - INTERVAL '1 DAY' AS "_fsql_from_86400s",
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
    CAST(COUNT(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
        AND "rows"."_fsql_filter_0"
        THEN 1
      END
    ) AS BIGINT) AS "trips_30d",
    CAST(SUM(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_604800s"
        THEN "rows"."_fsql_value_1"
      END
    ) AS DOUBLE PRECISION) AS "spend_7d",
    CAST(SUM(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
        THEN "rows"."_fsql_value_1"
      END
    ) AS DOUBLE PRECISION) AS "spend_30d",
    CAST(SUM(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_604800s"
        THEN "rows"."_fsql_value_2"
      END
    ) AS BIGINT) AS "minutes_7d",
    CAST(STDDEV_SAMP(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
        THEN "rows"."_fsql_value_3"
      END
    ) AS DOUBLE PRECISION) AS "fare_sd_30d",
    CAST((
      ARRAY_AGG(
        "rows"."_fsql_value_4" ORDER BY "rows"."_fsql_event_ts" DESC NULLS LAST, "rows"."_fsql_created_ts" DESC NULLS LAST
      ) FILTER(WHERE
        "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_86400s")
    )[1] AS TEXT) AS "last_status_1d"
  FROM "rider_trip_windows__rows" AS "rows"
  WHERE
    "rows"."rider_id" = "rider_trip_windows__ends"."rider_id"
    AND "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
    AND "rows"."_fsql_event_ts" < "rider_trip_windows__ends"."_fsql_end"
) AS "rider_trip_windows"
  ON TRUE
/* rider_rating: latest row at or before the spine's timestamp, per key */
LEFT JOIN LATERAL (
  SELECT
    "candidate"."rating"
  FROM "rider_rating__rows" AS "candidate"
  WHERE
    "candidate"."rider_id" = "spine"."rider_id"
    AND "candidate"."_fsql_event_ts" <= "spine"."event_timestamp"
    AND "candidate"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL '90 DAY'
    )
  ORDER BY
    "candidate"."_fsql_event_ts" DESC
  LIMIT 1
) AS "rider_rating"
  ON TRUE
