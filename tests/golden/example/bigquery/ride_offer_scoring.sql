-- fsql point-in-time training query: ride_offer_scoring
-- dialect bigquery, strategy window; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: trips_30d, acc_rate, spend_per_trip_30d, fare_vs_usual, log_fare, driver_keenness, pickup_wait_s, is_big_fare
WITH `spine` /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM spine
), `rider_trip_windows__rows` /* rider_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    `rider_id`,
    `completed_at` AS `_fsql_event_ts`,
    CAST(`fare` AS FLOAT64) AS `_fsql_value_1`
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
    FROM `trips`
    WHERE
      status = 'completed' AND distance_km >= 0.5
  ) AS `completed_trips`
  WHERE
    NOT `rider_id` IS NULL
    AND NOT `completed_at` IS NULL
    AND CAST(`completed_at` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
    AND CAST(`completed_at` AS TIMESTAMP) >= TIMESTAMP_SUB((
      SELECT
        MIN(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    ), INTERVAL 2595600 SECOND)
), `driver_hourly_stats__rows` /* driver_hourly_stats: feature rows from source 'driver_stats' */ AS (
  SELECT
    `driver_id`,
    `event_ts` AS `_fsql_event_ts`,
    `created_ts` AS `_fsql_created_ts`,
    `acc_rate` AS `acc_rate`,
    `conv_rate` AS `_fsql_in_1`
  FROM `driver_stats`
  WHERE
    NOT `driver_id` IS NULL
    AND NOT `event_ts` IS NULL
    AND `event_ts` <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
    AND `event_ts` >= TIMESTAMP_SUB((
      SELECT
        MIN(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    ), INTERVAL 2 DAY)
), `rider_trip_windows__ends` /* rider_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    `rider_id`,
    `_fsql_ts`,
    `_fsql_end`,
    TIMESTAMP_SUB(`_fsql_end`, INTERVAL 30 DAY) AS `_fsql_from_2592000s`
  FROM (
    SELECT DISTINCT
      `spine`.`rider_id`,
      CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
      TIMESTAMP_SUB(CAST(`spine`.`event_timestamp` AS TIMESTAMP), INTERVAL (MOD(
        MOD(UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)), 3600000000) + 3600000000,
        3600000000
      )) MICROSECOND) AS `_fsql_end`
    FROM `spine`
    WHERE
      NOT `spine`.`rider_id` IS NULL AND NOT `spine`.`event_timestamp` IS NULL
  ) AS `spine_times`
), `rider_trip_windows__pairs` /* rider_trip_windows: each spine time with the rows of its widest window, one range join */ AS (
  SELECT
    `ends`.`rider_id`,
    `ends`.`_fsql_ts`,
    `ends`.`_fsql_from_2592000s`,
    CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
    `rows`.`_fsql_value_1`
  FROM `rider_trip_windows__ends` AS `ends`
  INNER JOIN `rider_trip_windows__rows` AS `rows`
    ON `rows`.`rider_id` = `ends`.`rider_id`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) >= `ends`.`_fsql_from_2592000s`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) < `ends`.`_fsql_end`
), `rider_trip_windows__windows` /* rider_trip_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    `pairs`.`rider_id`,
    `pairs`.`_fsql_ts`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_2592000s` THEN 1 END) AS INT64) AS `trips_30d`,
    CAST(SUM(
      CASE
        WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_2592000s`
        THEN `pairs`.`_fsql_value_1`
      END
    ) AS FLOAT64) AS `spend_30d`
  FROM `rider_trip_windows__pairs` AS `pairs`
  GROUP BY
    `pairs`.`rider_id`,
    `pairs`.`_fsql_ts`
), `driver_hourly_stats__latest` /* driver_hourly_stats: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`driver_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`acc_rate`,
    `ranked`.`_fsql_in_1`
  FROM (
    SELECT
      `rows`.`driver_id`,
      `rows`.`_fsql_event_ts` AS `_fsql_event_ts`,
      `rows`.`acc_rate`,
      `rows`.`_fsql_in_1`,
      ROW_NUMBER() OVER (
        PARTITION BY `rows`.`driver_id`, `rows`.`_fsql_event_ts`
        ORDER BY `rows`.`_fsql_created_ts` DESC
      ) AS `_fsql_rank`
    FROM `driver_hourly_stats__rows` AS `rows`
  ) AS `ranked`
  WHERE
    `ranked`.`_fsql_rank` = 1
), `driver_hourly_stats__timeline` /* driver_hourly_stats: spine times and event times per key, in one union */ AS (
  SELECT DISTINCT
    `spine`.`driver_id`,
    CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
    CAST(NULL AS TIMESTAMP) AS `_fsql_event_ts`,
    1 AS `_fsql_is_spine`
  FROM `spine`
  WHERE
    NOT `spine`.`driver_id` IS NULL AND NOT `spine`.`event_timestamp` IS NULL
  UNION ALL
  SELECT
    `latest`.`driver_id`,
    `latest`.`_fsql_event_ts`,
    `latest`.`_fsql_event_ts`,
    0
  FROM `driver_hourly_stats__latest` AS `latest`
), `driver_hourly_stats__pit` /* driver_hourly_stats: per spine key and ts: the latest row at or before ts, in ttl */ AS (
  SELECT
    `timeline`.`driver_id`,
    `timeline`.`_fsql_ts`,
    `latest`.`acc_rate`,
    `latest`.`_fsql_in_1`
  FROM (
    SELECT
      `driver_id`,
      `_fsql_ts`,
      `_fsql_is_spine`,
      MAX(`_fsql_event_ts`) OVER (
        PARTITION BY `driver_id`
        ORDER BY `_fsql_ts` ASC, `_fsql_is_spine` ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `_fsql_event_ts`
    FROM `driver_hourly_stats__timeline`
  ) AS `timeline`
  INNER JOIN `driver_hourly_stats__latest` AS `latest`
    ON `latest`.`driver_id` = `timeline`.`driver_id`
    AND `latest`.`_fsql_event_ts` = `timeline`.`_fsql_event_ts`
    AND `latest`.`_fsql_event_ts` >= TIMESTAMP_SUB(`timeline`.`_fsql_ts`, INTERVAL 2 DAY)
  WHERE
    `timeline`.`_fsql_is_spine` = 1
)
SELECT
  `spine`.*,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`rider_trip_windows`.`trips_30d`, 0)
  END AS `trips_30d`,
  `driver_hourly_stats`.`acc_rate` AS `acc_rate`,
  CAST(CAST(`rider_trip_windows`.`spend_30d` AS FLOAT64) / NULLIF(
    CAST(CASE
      WHEN NOT `spine`.`event_timestamp` IS NULL
      THEN COALESCE(`rider_trip_windows`.`trips_30d`, 0)
    END AS FLOAT64),
    0
  ) AS FLOAT64) AS `spend_per_trip_30d`,
  CAST(CAST(CAST(`spine`.`offered_fare` AS FLOAT64) AS FLOAT64) / NULLIF(
    CAST((
      CAST(`rider_trip_windows`.`spend_30d` AS FLOAT64) / NULLIF(
        CAST(CASE
          WHEN NOT `spine`.`event_timestamp` IS NULL
          THEN COALESCE(`rider_trip_windows`.`trips_30d`, 0)
        END AS FLOAT64),
        0
      )
    ) AS FLOAT64),
    0
  ) AS FLOAT64) AS `fare_vs_usual`,
  CAST(CASE
    WHEN CAST(`spine`.`offered_fare` AS FLOAT64) > 0
    THEN LN(CAST(CAST(`spine`.`offered_fare` AS FLOAT64) AS FLOAT64))
  END AS FLOAT64) AS `log_fare`,
  CAST(GREATEST(
    COALESCE(`driver_hourly_stats`.`acc_rate`, `driver_hourly_stats`.`_fsql_in_1`),
    COALESCE(`driver_hourly_stats`.`_fsql_in_1`, `driver_hourly_stats`.`acc_rate`)
  ) AS FLOAT64) AS `driver_keenness`,
  CAST((
    CAST((
      UNIX_MICROS(CAST(`spine`.`pickup_eta_at` AS TIMESTAMP)) - UNIX_MICROS(CAST(`spine`.`offered_at` AS TIMESTAMP))
    ) AS FLOAT64) / 1000000
  ) AS FLOAT64) AS `pickup_wait_s`,
  CAST(CASE
    WHEN CAST(`spine`.`offered_fare` AS FLOAT64) >= 2 * COALESCE(
      CAST(`rider_trip_windows`.`spend_30d` AS FLOAT64) / NULLIF(
        CAST(CASE
          WHEN NOT `spine`.`event_timestamp` IS NULL
          THEN COALESCE(`rider_trip_windows`.`trips_30d`, 0)
        END AS FLOAT64),
        0
      ),
      0
    )
    THEN TRUE
    ELSE FALSE
  END AS BOOL) AS `is_big_fare`
FROM `spine`
/* rider_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN `rider_trip_windows__windows` AS `rider_trip_windows`
  ON `rider_trip_windows`.`rider_id` = `spine`.`rider_id`
  AND `rider_trip_windows`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* driver_hourly_stats: features for the spine row's keys and ts */
LEFT JOIN `driver_hourly_stats__pit` AS `driver_hourly_stats`
  ON `driver_hourly_stats`.`driver_id` = `spine`.`driver_id`
  AND `driver_hourly_stats`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
