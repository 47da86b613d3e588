-- fsql point-in-time training query: ride_offer_scoring
-- dialect postgres, strategy lateral; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: trips_30d, acc_rate, spend_per_trip_30d, fare_vs_usual, log_fare, driver_keenness, pickup_wait_s, is_big_fare
WITH "spine" /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM spine
), "rider_trip_windows__rows" /* rider_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    "rider_id",
    "completed_at" AS "_fsql_event_ts",
    CAST("fare" AS DOUBLE PRECISION) AS "_fsql_value_1"
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
    FROM "trips"
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
  FROM "driver_stats"
  WHERE
    NOT "driver_id" IS NULL AND NOT "event_ts" IS NULL
)
SELECT
  "spine".*,
  CASE
    WHEN NOT "spine"."event_timestamp" IS NULL
    THEN COALESCE("rider_trip_windows"."trips_30d", 0)
  END AS "trips_30d",
  "driver_hourly_stats"."acc_rate" AS "acc_rate",
  CAST(CAST("rider_trip_windows"."spend_30d" AS DOUBLE PRECISION) / NULLIF(
    CAST(CASE
      WHEN NOT "spine"."event_timestamp" IS NULL
      THEN COALESCE("rider_trip_windows"."trips_30d", 0)
    END AS DOUBLE PRECISION),
    0
  ) AS DOUBLE PRECISION) AS "spend_per_trip_30d",
  CAST(CAST(CAST("spine"."offered_fare" AS DOUBLE PRECISION) AS DOUBLE PRECISION) / NULLIF(
    CAST((
      CAST("rider_trip_windows"."spend_30d" AS DOUBLE PRECISION) / NULLIF(
        CAST(CASE
          WHEN NOT "spine"."event_timestamp" IS NULL
          THEN COALESCE("rider_trip_windows"."trips_30d", 0)
        END AS DOUBLE PRECISION),
        0
      )
    ) AS DOUBLE PRECISION),
    0
  ) AS DOUBLE PRECISION) AS "fare_vs_usual",
  CAST(CASE
    WHEN CAST("spine"."offered_fare" AS DOUBLE PRECISION) > 0
    THEN LN(CAST(CAST("spine"."offered_fare" AS DOUBLE PRECISION) AS DOUBLE PRECISION))
  END AS DOUBLE PRECISION) AS "log_fare",
  CAST(GREATEST(
    COALESCE("driver_hourly_stats"."acc_rate", "driver_hourly_stats"."_fsql_in_1"),
    COALESCE("driver_hourly_stats"."_fsql_in_1", "driver_hourly_stats"."acc_rate")
  ) AS DOUBLE PRECISION) AS "driver_keenness",
  CAST((
    CAST((
      CAST(EXTRACT(EPOCH FROM CAST("spine"."pickup_eta_at" AS TIMESTAMPTZ)) * 1000000 AS BIGINT) - CAST(EXTRACT(EPOCH FROM CAST("spine"."offered_at" AS TIMESTAMPTZ)) * 1000000 AS BIGINT)
    ) AS DOUBLE PRECISION) / 1000000
  ) AS DOUBLE PRECISION) AS "pickup_wait_s",
  CAST(CASE
    WHEN CAST("spine"."offered_fare" AS DOUBLE PRECISION) >= 2 * COALESCE(
      CAST("rider_trip_windows"."spend_30d" AS DOUBLE PRECISION) / NULLIF(
        CAST(CASE
          WHEN NOT "spine"."event_timestamp" IS NULL
          THEN COALESCE("rider_trip_windows"."trips_30d", 0)
        END AS DOUBLE PRECISION),
        0
      ),
      0
    )
    THEN TRUE
    ELSE FALSE
  END AS BOOLEAN) AS "is_big_fare"
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
    ) - INTERVAL '30 DAY' AS "_fsql_from_2592000s"
) AS "rider_trip_windows__ends"
  ON TRUE
/* rider_trip_windows: the spine row's windows, one range scan of its widest */
LEFT JOIN LATERAL (
  SELECT
    CAST(COUNT(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
        THEN 1
      END
    ) AS BIGINT) AS "trips_30d",
    CAST(SUM(
      CASE
        WHEN "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
        THEN "rows"."_fsql_value_1"
      END
    ) AS DOUBLE PRECISION) AS "spend_30d"
  FROM "rider_trip_windows__rows" AS "rows"
  WHERE
    "rows"."rider_id" = "rider_trip_windows__ends"."rider_id"
    AND "rows"."_fsql_event_ts" >= "rider_trip_windows__ends"."_fsql_from_2592000s"
    AND "rows"."_fsql_event_ts" < "rider_trip_windows__ends"."_fsql_end"
) AS "rider_trip_windows"
  ON TRUE
/* driver_hourly_stats: latest row at or before the spine's timestamp, per key */
LEFT JOIN LATERAL (
  SELECT
    "candidate"."acc_rate",
    "candidate"."_fsql_in_1"
  FROM "driver_hourly_stats__rows" AS "candidate"
  WHERE
    "candidate"."driver_id" = "spine"."driver_id"
    AND "candidate"."_fsql_event_ts" <= "spine"."event_timestamp"
    AND "candidate"."_fsql_event_ts" >= (
      "spine"."event_timestamp" - INTERVAL '2 DAY'
    )
  ORDER BY
    "candidate"."_fsql_event_ts" DESC,
    "candidate"."_fsql_created_ts" DESC NULLS LAST
  LIMIT 1
) AS "driver_hourly_stats"
  ON TRUE
