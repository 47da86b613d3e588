-- fsql point-in-time training query: driver_quality
-- dialect bigquery, strategy window; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: driver_hourly_stats__conv_rate, driver_hourly_stats__acc_rate, driver_hourly_stats__avg_daily_trips, driver_hourly_stats__acc_minus_conv, driver_profile__vehicle_type, driver_profile__seats, driver_profile__driver_rating, driver_profile__is_xl, driver_trip_windows__completed_trips_1d, driver_trip_windows__completed_trips_7d, driver_trip_windows__riders_served_7d
WITH `spine` /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM spine
), `driver_hourly_stats__rows` /* driver_hourly_stats: feature rows from source 'driver_stats' */ AS (
  SELECT
    `driver_id`,
    `event_ts` AS `_fsql_event_ts`,
    `created_ts` AS `_fsql_created_ts`,
    `conv_rate` AS `driver_hourly_stats__conv_rate`,
    `acc_rate` AS `driver_hourly_stats__acc_rate`,
    `avg_daily_trips` AS `driver_hourly_stats__avg_daily_trips`,
    CAST(`acc_rate` - `conv_rate` AS FLOAT64) AS `driver_hourly_stats__acc_minus_conv`
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
), `driver_profile__rows` /* driver_profile: feature rows from source 'drivers' */ AS (
  SELECT
    `driver_id`,
    `updated_at` AS `_fsql_event_ts`,
    `vehicle_type` AS `driver_profile__vehicle_type`,
    `seats` AS `driver_profile__seats`,
    `rating` AS `driver_profile__driver_rating`,
    CAST(`seats` >= 6 AS BOOL) AS `driver_profile__is_xl`
  FROM `drivers`
  WHERE
    NOT `driver_id` IS NULL
    AND NOT `updated_at` IS NULL
    AND CAST(`updated_at` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
), `driver_trip_windows__rows` /* driver_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    `driver_id`,
    `completed_at` AS `_fsql_event_ts`,
    CAST(`rider_id` AS INT64) AS `_fsql_value_1`
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
    NOT `driver_id` IS NULL
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
    ), INTERVAL 608400 SECOND)
), `driver_hourly_stats__latest` /* driver_hourly_stats: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`driver_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`driver_hourly_stats__conv_rate`,
    `ranked`.`driver_hourly_stats__acc_rate`,
    `ranked`.`driver_hourly_stats__avg_daily_trips`,
    `ranked`.`driver_hourly_stats__acc_minus_conv`
  FROM (
    SELECT
      `rows`.`driver_id`,
      `rows`.`_fsql_event_ts` AS `_fsql_event_ts`,
      `rows`.`driver_hourly_stats__conv_rate`,
      `rows`.`driver_hourly_stats__acc_rate`,
      `rows`.`driver_hourly_stats__avg_daily_trips`,
      `rows`.`driver_hourly_stats__acc_minus_conv`,
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
    `latest`.`driver_hourly_stats__conv_rate`,
    `latest`.`driver_hourly_stats__acc_rate`,
    `latest`.`driver_hourly_stats__avg_daily_trips`,
    `latest`.`driver_hourly_stats__acc_minus_conv`
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
), `driver_profile__latest` /* driver_profile: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`driver_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`driver_profile__vehicle_type`,
    `ranked`.`driver_profile__seats`,
    `ranked`.`driver_profile__driver_rating`,
    `ranked`.`driver_profile__is_xl`
  FROM (
    SELECT
      `rows`.`driver_id`,
      CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
      `rows`.`driver_profile__vehicle_type`,
      `rows`.`driver_profile__seats`,
      `rows`.`driver_profile__driver_rating`,
      `rows`.`driver_profile__is_xl`,
      ROW_NUMBER() OVER (
        PARTITION BY `rows`.`driver_id`, CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP)
        ORDER BY CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) ASC
      ) AS `_fsql_rank`
    FROM `driver_profile__rows` AS `rows`
  ) AS `ranked`
  WHERE
    `ranked`.`_fsql_rank` = 1
), `driver_profile__timeline` /* driver_profile: spine times and event times per key, in one union */ AS (
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
  FROM `driver_profile__latest` AS `latest`
), `driver_profile__pit` /* driver_profile: per spine key and ts: the latest row at or before ts, in ttl */ AS (
  SELECT
    `timeline`.`driver_id`,
    `timeline`.`_fsql_ts`,
    `latest`.`driver_profile__vehicle_type`,
    `latest`.`driver_profile__seats`,
    `latest`.`driver_profile__driver_rating`,
    `latest`.`driver_profile__is_xl`
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
    FROM `driver_profile__timeline`
  ) AS `timeline`
  INNER JOIN `driver_profile__latest` AS `latest`
    ON `latest`.`driver_id` = `timeline`.`driver_id`
    AND `latest`.`_fsql_event_ts` = `timeline`.`_fsql_event_ts`
  WHERE
    `timeline`.`_fsql_is_spine` = 1
), `driver_trip_windows__ends` /* driver_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    `driver_id`,
    `_fsql_ts`,
    `_fsql_end`,
    TIMESTAMP_SUB(`_fsql_end`, INTERVAL 1 DAY) AS `_fsql_from_86400s`,
    TIMESTAMP_SUB(`_fsql_end`, INTERVAL 7 DAY) AS `_fsql_from_604800s`
  FROM (
    SELECT DISTINCT
      `spine`.`driver_id`,
      CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
      TIMESTAMP_SUB(CAST(`spine`.`event_timestamp` AS TIMESTAMP), INTERVAL (MOD(
        MOD(UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)), 3600000000) + 3600000000,
        3600000000
      )) MICROSECOND) AS `_fsql_end`
    FROM `spine`
    WHERE
      NOT `spine`.`driver_id` IS NULL AND NOT `spine`.`event_timestamp` IS NULL
  ) AS `spine_times`
), `driver_trip_windows__pairs` /* driver_trip_windows: each spine time with the rows of its widest window, one range join */ AS (
  SELECT
    `ends`.`driver_id`,
    `ends`.`_fsql_ts`,
    `ends`.`_fsql_from_86400s`,
    `ends`.`_fsql_from_604800s`,
    CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
    `rows`.`_fsql_value_1`
  FROM `driver_trip_windows__ends` AS `ends`
  INNER JOIN `driver_trip_windows__rows` AS `rows`
    ON `rows`.`driver_id` = `ends`.`driver_id`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) >= `ends`.`_fsql_from_604800s`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) < `ends`.`_fsql_end`
), `driver_trip_windows__windows` /* driver_trip_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    `pairs`.`driver_id`,
    `pairs`.`_fsql_ts`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_86400s` THEN 1 END) AS INT64) AS `completed_trips_1d`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_604800s` THEN 1 END) AS INT64) AS `completed_trips_7d`,
    CAST(COUNT(
      DISTINCT CASE
        WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_604800s`
        THEN `pairs`.`_fsql_value_1`
      END
    ) AS INT64) AS `riders_served_7d`
  FROM `driver_trip_windows__pairs` AS `pairs`
  GROUP BY
    `pairs`.`driver_id`,
    `pairs`.`_fsql_ts`
)
SELECT
  `spine`.*,
  `driver_hourly_stats`.`driver_hourly_stats__conv_rate` AS `driver_hourly_stats__conv_rate`,
  `driver_hourly_stats`.`driver_hourly_stats__acc_rate` AS `driver_hourly_stats__acc_rate`,
  `driver_hourly_stats`.`driver_hourly_stats__avg_daily_trips` AS `driver_hourly_stats__avg_daily_trips`,
  `driver_hourly_stats`.`driver_hourly_stats__acc_minus_conv` AS `driver_hourly_stats__acc_minus_conv`,
  `driver_profile`.`driver_profile__vehicle_type` AS `driver_profile__vehicle_type`,
  `driver_profile`.`driver_profile__seats` AS `driver_profile__seats`,
  `driver_profile`.`driver_profile__driver_rating` AS `driver_profile__driver_rating`,
  `driver_profile`.`driver_profile__is_xl` AS `driver_profile__is_xl`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`driver_trip_windows`.`completed_trips_1d`, 0)
  END AS `driver_trip_windows__completed_trips_1d`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`driver_trip_windows`.`completed_trips_7d`, 0)
  END AS `driver_trip_windows__completed_trips_7d`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`driver_trip_windows`.`riders_served_7d`, 0)
  END AS `driver_trip_windows__riders_served_7d`
FROM `spine`
/* driver_hourly_stats: features for the spine row's keys and ts */
LEFT JOIN `driver_hourly_stats__pit` AS `driver_hourly_stats`
  ON `driver_hourly_stats`.`driver_id` = `spine`.`driver_id`
  AND `driver_hourly_stats`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* driver_profile: features for the spine row's keys and ts */
LEFT JOIN `driver_profile__pit` AS `driver_profile`
  ON `driver_profile`.`driver_id` = `spine`.`driver_id`
  AND `driver_profile`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* driver_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN `driver_trip_windows__windows` AS `driver_trip_windows`
  ON `driver_trip_windows`.`driver_id` = `spine`.`driver_id`
  AND `driver_trip_windows`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
