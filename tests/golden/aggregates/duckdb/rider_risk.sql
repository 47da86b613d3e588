-- fsql point-in-time training query: rider_risk
-- dialect duckdb, strategy asof; run it in a session whose time zone is UTC
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
), "rider_trip_windows__ends" /* rider_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    "rider_id",
    "_fsql_ts",
    "_fsql_end",
    "_fsql_end" - INTERVAL 1 DAY AS "_fsql_from_86400s",
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
    "ends"."_fsql_from_86400s",
    "ends"."_fsql_from_604800s",
    "ends"."_fsql_from_2592000s",
    "rows"."_fsql_event_ts" AS "_fsql_event_ts",
    "rows"."_fsql_created_ts",
    "rows"."_fsql_filter_0",
    "rows"."_fsql_value_1",
    "rows"."_fsql_value_2",
    "rows"."_fsql_value_3",
    "rows"."_fsql_value_4"
  FROM "rider_trip_windows__ends" AS "ends"
  INNER JOIN "rider_trip_windows__rows" AS "rows"
    ON "rows"."rider_id" = "ends"."rider_id"
    AND "rows"."_fsql_event_ts" >= "ends"."_fsql_from_2592000s"
    AND "rows"."_fsql_event_ts" < "ends"."_fsql_end"
), "rider_trip_windows__windows" /* rider_trip_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    "grouped"."rider_id",
    "grouped"."_fsql_ts",
    "grouped"."trips_7d",
    "grouped"."trips_30d",
    "grouped"."spend_7d",
    "grouped"."spend_30d",
    "grouped"."minutes_7d",
    "grouped"."fare_sd_30d",
    CASE
      WHEN "last_4"."_fsql_latest_ts" >= "last_4"."_fsql_from_86400s"
      THEN "last_4"."_fsql_value_4"
    END AS "last_status_1d"
  FROM (
    SELECT
      "pairs"."rider_id",
      "pairs"."_fsql_ts",
      CAST(COUNT(
        CASE
          WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_604800s"
          AND "pairs"."_fsql_filter_0"
          THEN 1
        END
      ) AS BIGINT) AS "trips_7d",
      CAST(COUNT(
        CASE
          WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_2592000s"
          AND "pairs"."_fsql_filter_0"
          THEN 1
        END
      ) AS BIGINT) AS "trips_30d",
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
      CAST(SUM(
        CASE
          WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_604800s"
          THEN "pairs"."_fsql_value_2"
        END
      ) AS BIGINT) AS "minutes_7d",
      CAST(STDDEV_SAMP(
        CASE
          WHEN "pairs"."_fsql_event_ts" >= "pairs"."_fsql_from_2592000s"
          THEN "pairs"."_fsql_value_3"
        END
      ) AS DOUBLE) AS "fare_sd_30d"
    FROM "rider_trip_windows__pairs" AS "pairs"
    GROUP BY
      "pairs"."rider_id",
      "pairs"."_fsql_ts"
  ) AS "grouped"
  LEFT JOIN (
    SELECT
      "rider_id",
      "_fsql_ts",
      "_fsql_from_86400s",
      "_fsql_from_604800s",
      "_fsql_from_2592000s",
      "_fsql_latest_ts",
      "_fsql_value_4"
    FROM (
      SELECT
        "rider_id",
        "_fsql_ts",
        "_fsql_from_86400s",
        "_fsql_from_604800s",
        "_fsql_from_2592000s",
        "_fsql_event_ts" AS "_fsql_latest_ts",
        "_fsql_value_4",
        ROW_NUMBER() OVER (
          PARTITION BY "rider_id", "_fsql_ts"
          ORDER BY "_fsql_event_ts" DESC, "_fsql_created_ts" DESC
        ) AS "_fsql_rank"
      FROM "rider_trip_windows__pairs"
    ) AS "ranked"
    WHERE
      "_fsql_rank" = 1
  ) AS "last_4"
    ON "last_4"."rider_id" = "grouped"."rider_id"
    AND "last_4"."_fsql_ts" = "grouped"."_fsql_ts"
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
  CASE
    WHEN "rider_rating"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL 90 DAY
    )
    THEN "rider_rating"."rating"
  END AS "rating"
FROM "spine"
/* rider_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN "rider_trip_windows__windows" AS "rider_trip_windows"
  ON "rider_trip_windows"."rider_id" = "spine"."rider_id"
  AND "rider_trip_windows"."_fsql_ts" = CAST("spine"."event_timestamp" AS TIMESTAMPTZ)
/* rider_rating: latest row at or before the spine's timestamp, per key */
ASOF LEFT JOIN "rider_rating__rows" AS "rider_rating"
  ON "spine"."rider_id" = "rider_rating"."rider_id"
  AND "spine"."event_timestamp" >= "rider_rating"."_fsql_event_ts"
