-- fsql point-in-time training query: ride_acceptance
-- dialect spark, strategy window; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: conv_rate, acc_rate, avg_daily_trips, acc_minus_conv, vehicle_type, driver_rating, trips_7d, trips_30d, spend_7d, spend_30d, avg_rating_given_30d, completed_trips_1d, completed_trips_7d, riders_served_7d, is_premium, trips_together, last_rating, zone_pressure, zone_requests_15m, zone_requests_1h
WITH `spine` /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM spine
), `driver_hourly_stats__rows` /* driver_hourly_stats: feature rows from source 'driver_stats' */ AS (
  SELECT
    `driver_id`,
    `event_ts` AS `_fsql_event_ts`,
    `created_ts` AS `_fsql_created_ts`,
    `conv_rate` AS `conv_rate`,
    `acc_rate` AS `acc_rate`,
    `avg_daily_trips` AS `avg_daily_trips`,
    CAST(`acc_rate` - `conv_rate` AS DOUBLE) AS `acc_minus_conv`
  FROM parquet.`data/driver_stats.parquet`
  WHERE
    NOT `driver_id` IS NULL
    AND NOT `event_ts` IS NULL
    AND `event_ts` <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
    AND `event_ts` >= (
      (
        SELECT
          MIN(CAST(`event_timestamp` AS TIMESTAMP))
        FROM `spine`
      ) - INTERVAL 2 DAY
    )
), `driver_profile__rows` /* driver_profile: feature rows from source 'drivers' */ AS (
  SELECT
    `driver_id`,
    `updated_at` AS `_fsql_event_ts`,
    `vehicle_type` AS `vehicle_type`,
    `rating` AS `driver_rating`
  FROM `drivers`
  WHERE
    NOT `driver_id` IS NULL
    AND NOT `updated_at` IS NULL
    AND CAST(`updated_at` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
), `rider_trip_windows__rows` /* rider_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    `rider_id`,
    `completed_at` AS `_fsql_event_ts`,
    CAST(`fare` AS DOUBLE) AS `_fsql_value_1`,
    CAST(`rating_by_rider` AS BIGINT) AS `_fsql_value_2`
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
    FROM parquet.`data/trips.parquet`
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
    AND CAST(`completed_at` AS TIMESTAMP) >= (
      (
        SELECT
          MIN(CAST(`event_timestamp` AS TIMESTAMP))
        FROM `spine`
      ) - INTERVAL 2595600 SECOND
    )
), `driver_trip_windows__rows` /* driver_trip_windows: feature rows from source 'completed_trips' */ AS (
  SELECT
    `driver_id`,
    `completed_at` AS `_fsql_event_ts`,
    CAST(`rider_id` AS BIGINT) AS `_fsql_value_1`
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
    FROM parquet.`data/trips.parquet`
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
    AND CAST(`completed_at` AS TIMESTAMP) >= (
      (
        SELECT
          MIN(CAST(`event_timestamp` AS TIMESTAMP))
        FROM `spine`
      ) - INTERVAL 608400 SECOND
    )
), `rider_profile__rows` /* rider_profile: feature rows from source 'riders' */ AS (
  SELECT
    `rider_id`,
    `signup_at` AS `_fsql_event_ts`,
    `is_premium` AS `is_premium`
  FROM `riders`
  WHERE
    NOT `rider_id` IS NULL
    AND NOT `signup_at` IS NULL
    AND CAST(`signup_at` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
), `rider_driver_affinity__rows` /* rider_driver_affinity: feature rows from source 'rider_driver_pairs' */ AS (
  SELECT
    `rider_id`,
    `driver_id`,
    `completed_at` AS `_fsql_event_ts`,
    CAST(`trips_together` AS BIGINT) AS `trips_together`,
    CAST(`last_rating` AS BIGINT) AS `last_rating`
  FROM (
    SELECT
      rider_id,
      driver_id,
      completed_at,
      COUNT(*) OVER pair AS trips_together,
      rating_by_rider AS last_rating
    FROM parquet.`data/trips.parquet`
    WHERE
      status = 'completed'
    WINDOW pair AS (
      PARTITION BY rider_id, driver_id
      ORDER BY completed_at NULLS LAST, trip_id NULLS LAST
    )
  ) AS `rider_driver_pairs`
  WHERE
    NOT `rider_id` IS NULL
    AND NOT `driver_id` IS NULL
    AND NOT `completed_at` IS NULL
    AND CAST(`completed_at` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
    AND CAST(`completed_at` AS TIMESTAMP) >= (
      (
        SELECT
          MIN(CAST(`event_timestamp` AS TIMESTAMP))
        FROM `spine`
      ) - INTERVAL 90 DAY
    )
), `zone_demand__rows` /* zone_demand: feature rows from source 'zone_demand' */ AS (
  SELECT
    `zone_id`,
    `window_end` AS `_fsql_event_ts`,
    CAST(`requests` / GREATEST(`idle_drivers`, 1) AS DOUBLE) AS `zone_pressure`
  FROM parquet.`data/zone_demand.parquet`
  WHERE
    NOT `zone_id` IS NULL
    AND NOT `window_end` IS NULL
    AND CAST(`window_end` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
    AND CAST(`window_end` AS TIMESTAMP) >= (
      (
        SELECT
          MIN(CAST(`event_timestamp` AS TIMESTAMP))
        FROM `spine`
      ) - INTERVAL 1 HOUR
    )
), `zone_request_windows__rows` /* zone_request_windows: feature rows from source 'trips' */ AS (
  SELECT
    `zone_id`,
    `requested_at` AS `_fsql_event_ts`
  FROM parquet.`data/trips.parquet`
  WHERE
    NOT `zone_id` IS NULL
    AND NOT `requested_at` IS NULL
    AND CAST(`requested_at` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`event_timestamp` AS TIMESTAMP))
      FROM `spine`
    )
    AND CAST(`requested_at` AS TIMESTAMP) >= (
      (
        SELECT
          MIN(CAST(`event_timestamp` AS TIMESTAMP))
        FROM `spine`
      ) - INTERVAL 4500 SECOND
    )
), `driver_hourly_stats__latest` /* driver_hourly_stats: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`driver_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`conv_rate`,
    `ranked`.`acc_rate`,
    `ranked`.`avg_daily_trips`,
    `ranked`.`acc_minus_conv`
  FROM (
    SELECT
      `rows`.`driver_id`,
      `rows`.`_fsql_event_ts` AS `_fsql_event_ts`,
      `rows`.`conv_rate`,
      `rows`.`acc_rate`,
      `rows`.`avg_daily_trips`,
      `rows`.`acc_minus_conv`,
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
    `latest`.`conv_rate`,
    `latest`.`acc_rate`,
    `latest`.`avg_daily_trips`,
    `latest`.`acc_minus_conv`
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
    AND `latest`.`_fsql_event_ts` >= (
      `timeline`.`_fsql_ts` - INTERVAL 2 DAY
    )
  WHERE
    `timeline`.`_fsql_is_spine` = 1
), `driver_profile__latest` /* driver_profile: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`driver_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`vehicle_type`,
    `ranked`.`driver_rating`
  FROM (
    SELECT
      `rows`.`driver_id`,
      CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
      `rows`.`vehicle_type`,
      `rows`.`driver_rating`,
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
    `latest`.`vehicle_type`,
    `latest`.`driver_rating`
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
), `rider_trip_windows__ends` /* rider_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    `rider_id`,
    `_fsql_ts`,
    `_fsql_end`,
    `_fsql_end` - INTERVAL 7 DAY AS `_fsql_from_604800s`,
    `_fsql_end` - INTERVAL 30 DAY AS `_fsql_from_2592000s`
  FROM (
    SELECT DISTINCT
      `spine`.`rider_id`,
      CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
      TIMESTAMP_MICROS(
        UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)) - (
          UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)) % 3600000000 + 3600000000
        ) % 3600000000
      ) AS `_fsql_end`
    FROM `spine`
    WHERE
      NOT `spine`.`rider_id` IS NULL AND NOT `spine`.`event_timestamp` IS NULL
  ) AS `spine_times`
), `rider_trip_windows__pairs` /* rider_trip_windows: each spine time with the rows of its widest window, one range join */ AS (
  SELECT
    `ends`.`rider_id`,
    `ends`.`_fsql_ts`,
    `ends`.`_fsql_from_604800s`,
    `ends`.`_fsql_from_2592000s`,
    CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
    `rows`.`_fsql_value_1`,
    `rows`.`_fsql_value_2`
  FROM `rider_trip_windows__ends` AS `ends`
  INNER JOIN `rider_trip_windows__rows` AS `rows`
    ON `rows`.`rider_id` = `ends`.`rider_id`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) >= `ends`.`_fsql_from_2592000s`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) < `ends`.`_fsql_end`
), `rider_trip_windows__windows` /* rider_trip_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    `pairs`.`rider_id`,
    `pairs`.`_fsql_ts`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_604800s` THEN 1 END) AS BIGINT) AS `trips_7d`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_2592000s` THEN 1 END) AS BIGINT) AS `trips_30d`,
    CAST(SUM(
      CASE
        WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_604800s`
        THEN `pairs`.`_fsql_value_1`
      END
    ) AS DOUBLE) AS `spend_7d`,
    CAST(SUM(
      CASE
        WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_2592000s`
        THEN `pairs`.`_fsql_value_1`
      END
    ) AS DOUBLE) AS `spend_30d`,
    CAST(AVG(
      CASE
        WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_2592000s`
        THEN `pairs`.`_fsql_value_2`
      END
    ) AS DOUBLE) AS `avg_rating_given_30d`
  FROM `rider_trip_windows__pairs` AS `pairs`
  GROUP BY
    `pairs`.`rider_id`,
    `pairs`.`_fsql_ts`
), `driver_trip_windows__ends` /* driver_trip_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    `driver_id`,
    `_fsql_ts`,
    `_fsql_end`,
    `_fsql_end` - INTERVAL 1 DAY AS `_fsql_from_86400s`,
    `_fsql_end` - INTERVAL 7 DAY AS `_fsql_from_604800s`
  FROM (
    SELECT DISTINCT
      `spine`.`driver_id`,
      CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
      TIMESTAMP_MICROS(
        UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)) - (
          UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)) % 3600000000 + 3600000000
        ) % 3600000000
      ) AS `_fsql_end`
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
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_86400s` THEN 1 END) AS BIGINT) AS `completed_trips_1d`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_604800s` THEN 1 END) AS BIGINT) AS `completed_trips_7d`,
    CAST(COUNT(
      DISTINCT CASE
        WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_604800s`
        THEN `pairs`.`_fsql_value_1`
      END
    ) AS BIGINT) AS `riders_served_7d`
  FROM `driver_trip_windows__pairs` AS `pairs`
  GROUP BY
    `pairs`.`driver_id`,
    `pairs`.`_fsql_ts`
), `rider_profile__latest` /* rider_profile: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`rider_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`is_premium`
  FROM (
    SELECT
      `rows`.`rider_id`,
      CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
      `rows`.`is_premium`,
      ROW_NUMBER() OVER (
        PARTITION BY `rows`.`rider_id`, CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP)
        ORDER BY CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) ASC
      ) AS `_fsql_rank`
    FROM `rider_profile__rows` AS `rows`
  ) AS `ranked`
  WHERE
    `ranked`.`_fsql_rank` = 1
), `rider_profile__timeline` /* rider_profile: spine times and event times per key, in one union */ AS (
  SELECT DISTINCT
    `spine`.`rider_id`,
    CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
    CAST(NULL AS TIMESTAMP) AS `_fsql_event_ts`,
    1 AS `_fsql_is_spine`
  FROM `spine`
  WHERE
    NOT `spine`.`rider_id` IS NULL AND NOT `spine`.`event_timestamp` IS NULL
  UNION ALL
  SELECT
    `latest`.`rider_id`,
    `latest`.`_fsql_event_ts`,
    `latest`.`_fsql_event_ts`,
    0
  FROM `rider_profile__latest` AS `latest`
), `rider_profile__pit` /* rider_profile: per spine key and ts: the latest row at or before ts, in ttl */ AS (
  SELECT
    `timeline`.`rider_id`,
    `timeline`.`_fsql_ts`,
    `latest`.`is_premium`
  FROM (
    SELECT
      `rider_id`,
      `_fsql_ts`,
      `_fsql_is_spine`,
      MAX(`_fsql_event_ts`) OVER (
        PARTITION BY `rider_id`
        ORDER BY `_fsql_ts` ASC, `_fsql_is_spine` ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `_fsql_event_ts`
    FROM `rider_profile__timeline`
  ) AS `timeline`
  INNER JOIN `rider_profile__latest` AS `latest`
    ON `latest`.`rider_id` = `timeline`.`rider_id`
    AND `latest`.`_fsql_event_ts` = `timeline`.`_fsql_event_ts`
  WHERE
    `timeline`.`_fsql_is_spine` = 1
), `rider_driver_affinity__latest` /* rider_driver_affinity: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`rider_id`,
    `ranked`.`driver_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`trips_together`,
    `ranked`.`last_rating`
  FROM (
    SELECT
      `rows`.`rider_id`,
      `rows`.`driver_id`,
      CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
      `rows`.`trips_together`,
      `rows`.`last_rating`,
      ROW_NUMBER() OVER (
        PARTITION BY `rows`.`rider_id`, `rows`.`driver_id`, CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP)
        ORDER BY CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) ASC
      ) AS `_fsql_rank`
    FROM `rider_driver_affinity__rows` AS `rows`
  ) AS `ranked`
  WHERE
    `ranked`.`_fsql_rank` = 1
), `rider_driver_affinity__timeline` /* rider_driver_affinity: spine times and event times per key, in one union */ AS (
  SELECT DISTINCT
    `spine`.`rider_id`,
    `spine`.`driver_id`,
    CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
    CAST(NULL AS TIMESTAMP) AS `_fsql_event_ts`,
    1 AS `_fsql_is_spine`
  FROM `spine`
  WHERE
    NOT `spine`.`rider_id` IS NULL
    AND NOT `spine`.`driver_id` IS NULL
    AND NOT `spine`.`event_timestamp` IS NULL
  UNION ALL
  SELECT
    `latest`.`rider_id`,
    `latest`.`driver_id`,
    `latest`.`_fsql_event_ts`,
    `latest`.`_fsql_event_ts`,
    0
  FROM `rider_driver_affinity__latest` AS `latest`
), `rider_driver_affinity__pit` /* rider_driver_affinity: per spine key and ts: the latest row at or before ts, in ttl */ AS (
  SELECT
    `timeline`.`rider_id`,
    `timeline`.`driver_id`,
    `timeline`.`_fsql_ts`,
    `latest`.`trips_together`,
    `latest`.`last_rating`
  FROM (
    SELECT
      `rider_id`,
      `driver_id`,
      `_fsql_ts`,
      `_fsql_is_spine`,
      MAX(`_fsql_event_ts`) OVER (
        PARTITION BY `rider_id`, `driver_id`
        ORDER BY `_fsql_ts` ASC, `_fsql_is_spine` ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `_fsql_event_ts`
    FROM `rider_driver_affinity__timeline`
  ) AS `timeline`
  INNER JOIN `rider_driver_affinity__latest` AS `latest`
    ON `latest`.`rider_id` = `timeline`.`rider_id`
    AND `latest`.`driver_id` = `timeline`.`driver_id`
    AND `latest`.`_fsql_event_ts` = `timeline`.`_fsql_event_ts`
    AND `latest`.`_fsql_event_ts` >= (
      `timeline`.`_fsql_ts` - INTERVAL 90 DAY
    )
  WHERE
    `timeline`.`_fsql_is_spine` = 1
), `zone_demand__latest` /* zone_demand: one row per key and event time, the latest created */ AS (
  SELECT
    `ranked`.`zone_id`,
    `ranked`.`_fsql_event_ts`,
    `ranked`.`zone_pressure`
  FROM (
    SELECT
      `rows`.`zone_id`,
      CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`,
      `rows`.`zone_pressure`,
      ROW_NUMBER() OVER (
        PARTITION BY `rows`.`zone_id`, CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP)
        ORDER BY CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) ASC
      ) AS `_fsql_rank`
    FROM `zone_demand__rows` AS `rows`
  ) AS `ranked`
  WHERE
    `ranked`.`_fsql_rank` = 1
), `zone_demand__timeline` /* zone_demand: spine times and event times per key, in one union */ AS (
  SELECT DISTINCT
    `spine`.`zone_id`,
    CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
    CAST(NULL AS TIMESTAMP) AS `_fsql_event_ts`,
    1 AS `_fsql_is_spine`
  FROM `spine`
  WHERE
    NOT `spine`.`zone_id` IS NULL AND NOT `spine`.`event_timestamp` IS NULL
  UNION ALL
  SELECT
    `latest`.`zone_id`,
    `latest`.`_fsql_event_ts`,
    `latest`.`_fsql_event_ts`,
    0
  FROM `zone_demand__latest` AS `latest`
), `zone_demand__pit` /* zone_demand: per spine key and ts: the latest row at or before ts, in ttl */ AS (
  SELECT
    `timeline`.`zone_id`,
    `timeline`.`_fsql_ts`,
    `latest`.`zone_pressure`
  FROM (
    SELECT
      `zone_id`,
      `_fsql_ts`,
      `_fsql_is_spine`,
      MAX(`_fsql_event_ts`) OVER (
        PARTITION BY `zone_id`
        ORDER BY `_fsql_ts` ASC, `_fsql_is_spine` ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `_fsql_event_ts`
    FROM `zone_demand__timeline`
  ) AS `timeline`
  INNER JOIN `zone_demand__latest` AS `latest`
    ON `latest`.`zone_id` = `timeline`.`zone_id`
    AND `latest`.`_fsql_event_ts` = `timeline`.`_fsql_event_ts`
    AND `latest`.`_fsql_event_ts` >= (
      `timeline`.`_fsql_ts` - INTERVAL 1 HOUR
    )
  WHERE
    `timeline`.`_fsql_is_spine` = 1
), `zone_request_windows__ends` /* zone_request_windows: the spine's distinct keys and ts, each window's ends */ AS (
  SELECT
    `zone_id`,
    `_fsql_ts`,
    `_fsql_end`,
    `_fsql_end` - INTERVAL 15 MINUTE AS `_fsql_from_900s`,
    `_fsql_end` - INTERVAL 1 HOUR AS `_fsql_from_3600s`
  FROM (
    SELECT DISTINCT
      `spine`.`zone_id`,
      CAST(`spine`.`event_timestamp` AS TIMESTAMP) AS `_fsql_ts`,
      TIMESTAMP_MICROS(
        UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)) - (
          UNIX_MICROS(CAST(`spine`.`event_timestamp` AS TIMESTAMP)) % 900000000 + 900000000
        ) % 900000000
      ) AS `_fsql_end`
    FROM `spine`
    WHERE
      NOT `spine`.`zone_id` IS NULL AND NOT `spine`.`event_timestamp` IS NULL
  ) AS `spine_times`
), `zone_request_windows__pairs` /* zone_request_windows: each spine time with the rows of its widest window, one range join */ AS (
  SELECT
    `ends`.`zone_id`,
    `ends`.`_fsql_ts`,
    `ends`.`_fsql_from_900s`,
    `ends`.`_fsql_from_3600s`,
    CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) AS `_fsql_event_ts`
  FROM `zone_request_windows__ends` AS `ends`
  INNER JOIN `zone_request_windows__rows` AS `rows`
    ON `rows`.`zone_id` = `ends`.`zone_id`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) >= `ends`.`_fsql_from_3600s`
    AND CAST(`rows`.`_fsql_event_ts` AS TIMESTAMP) < `ends`.`_fsql_end`
), `zone_request_windows__windows` /* zone_request_windows: per spine keys and ts: every window of every aggregation */ AS (
  SELECT
    `pairs`.`zone_id`,
    `pairs`.`_fsql_ts`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_900s` THEN 1 END) AS BIGINT) AS `zone_requests_15m`,
    CAST(COUNT(CASE WHEN `pairs`.`_fsql_event_ts` >= `pairs`.`_fsql_from_3600s` THEN 1 END) AS BIGINT) AS `zone_requests_1h`
  FROM `zone_request_windows__pairs` AS `pairs`
  GROUP BY
    `pairs`.`zone_id`,
    `pairs`.`_fsql_ts`
)
SELECT
  `spine`.*,
  `driver_hourly_stats`.`conv_rate` AS `conv_rate`,
  `driver_hourly_stats`.`acc_rate` AS `acc_rate`,
  `driver_hourly_stats`.`avg_daily_trips` AS `avg_daily_trips`,
  `driver_hourly_stats`.`acc_minus_conv` AS `acc_minus_conv`,
  `driver_profile`.`vehicle_type` AS `vehicle_type`,
  `driver_profile`.`driver_rating` AS `driver_rating`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`rider_trip_windows`.`trips_7d`, 0)
  END AS `trips_7d`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`rider_trip_windows`.`trips_30d`, 0)
  END AS `trips_30d`,
  `rider_trip_windows`.`spend_7d` AS `spend_7d`,
  `rider_trip_windows`.`spend_30d` AS `spend_30d`,
  `rider_trip_windows`.`avg_rating_given_30d` AS `avg_rating_given_30d`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`driver_trip_windows`.`completed_trips_1d`, 0)
  END AS `completed_trips_1d`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`driver_trip_windows`.`completed_trips_7d`, 0)
  END AS `completed_trips_7d`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`driver_trip_windows`.`riders_served_7d`, 0)
  END AS `riders_served_7d`,
  `rider_profile`.`is_premium` AS `is_premium`,
  `rider_driver_affinity`.`trips_together` AS `trips_together`,
  `rider_driver_affinity`.`last_rating` AS `last_rating`,
  `zone_demand`.`zone_pressure` AS `zone_pressure`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`zone_request_windows`.`zone_requests_15m`, 0)
  END AS `zone_requests_15m`,
  CASE
    WHEN NOT `spine`.`event_timestamp` IS NULL
    THEN COALESCE(`zone_request_windows`.`zone_requests_1h`, 0)
  END AS `zone_requests_1h`
FROM `spine`
/* driver_hourly_stats: features for the spine row's keys and ts */
LEFT JOIN `driver_hourly_stats__pit` AS `driver_hourly_stats`
  ON `driver_hourly_stats`.`driver_id` = `spine`.`driver_id`
  AND `driver_hourly_stats`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* driver_profile: features for the spine row's keys and ts */
LEFT JOIN `driver_profile__pit` AS `driver_profile`
  ON `driver_profile`.`driver_id` = `spine`.`driver_id`
  AND `driver_profile`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* rider_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN `rider_trip_windows__windows` AS `rider_trip_windows`
  ON `rider_trip_windows`.`rider_id` = `spine`.`rider_id`
  AND `rider_trip_windows`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* driver_trip_windows: aggregates for the spine row's keys and ts */
LEFT JOIN `driver_trip_windows__windows` AS `driver_trip_windows`
  ON `driver_trip_windows`.`driver_id` = `spine`.`driver_id`
  AND `driver_trip_windows`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* rider_profile: features for the spine row's keys and ts */
LEFT JOIN `rider_profile__pit` AS `rider_profile`
  ON `rider_profile`.`rider_id` = `spine`.`rider_id`
  AND `rider_profile`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* rider_driver_affinity: features for the spine row's keys and ts */
LEFT JOIN `rider_driver_affinity__pit` AS `rider_driver_affinity`
  ON `rider_driver_affinity`.`rider_id` = `spine`.`rider_id`
  AND `rider_driver_affinity`.`driver_id` = `spine`.`driver_id`
  AND `rider_driver_affinity`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* zone_demand: features for the spine row's keys and ts */
LEFT JOIN `zone_demand__pit` AS `zone_demand`
  ON `zone_demand`.`zone_id` = `spine`.`zone_id`
  AND `zone_demand`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
/* zone_request_windows: aggregates for the spine row's keys and ts */
LEFT JOIN `zone_request_windows__windows` AS `zone_request_windows`
  ON `zone_request_windows`.`zone_id` = `spine`.`zone_id`
  AND `zone_request_windows`.`_fsql_ts` = CAST(`spine`.`event_timestamp` AS TIMESTAMP)
