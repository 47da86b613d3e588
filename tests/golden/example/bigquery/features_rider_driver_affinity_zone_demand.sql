-- fsql point-in-time training query: features_rider_driver_affinity_zone_demand
-- dialect bigquery, strategy window; run it in a session whose time zone is UTC
-- (naive timestamps are read as UTC); relative file paths are relative to the project directory.
-- Features: zone_pressure, trips_together, last_rating
WITH `spine` /* spine: the rows asked for, each kept once, labels included */ AS (
  SELECT
    *
  FROM (
    SELECT
      rider_id,
      driver_id,
      zone_id,
      requested_at AS ts
    FROM analytics.requests
  ) AS `spine_query`
), `zone_demand__rows` /* zone_demand: feature rows from source 'zone_demand' */ AS (
  SELECT
    `zone_id`,
    `window_end` AS `_fsql_event_ts`,
    CAST(`requests` / GREATEST(`idle_drivers`, 1) AS FLOAT64) AS `zone_pressure`
  FROM `zone_demand`
  WHERE
    NOT `zone_id` IS NULL
    AND NOT `window_end` IS NULL
    AND CAST(`window_end` AS TIMESTAMP) <= (
      SELECT
        MAX(CAST(`ts` AS TIMESTAMP))
      FROM `spine`
    )
    AND CAST(`window_end` AS TIMESTAMP) >= TIMESTAMP_SUB((
      SELECT
        MIN(CAST(`ts` AS TIMESTAMP))
      FROM `spine`
    ), INTERVAL 1 HOUR)
), `rider_driver_affinity__rows` /* rider_driver_affinity: feature rows from source 'rider_driver_pairs' */ AS (
  SELECT
    `rider_id`,
    `driver_id`,
    `completed_at` AS `_fsql_event_ts`,
    CAST(`trips_together` AS INT64) AS `trips_together`,
    CAST(`last_rating` AS INT64) AS `last_rating`
  FROM (
    SELECT
      rider_id,
      driver_id,
      completed_at,
      COUNT(*) OVER pair AS trips_together,
      rating_by_rider AS last_rating
    FROM `trips`
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
        MAX(CAST(`ts` AS TIMESTAMP))
      FROM `spine`
    )
    AND CAST(`completed_at` AS TIMESTAMP) >= TIMESTAMP_SUB((
      SELECT
        MIN(CAST(`ts` AS TIMESTAMP))
      FROM `spine`
    ), INTERVAL 90 DAY)
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
    CAST(`spine`.`ts` AS TIMESTAMP) AS `_fsql_ts`,
    CAST(NULL AS TIMESTAMP) AS `_fsql_event_ts`,
    1 AS `_fsql_is_spine`
  FROM `spine`
  WHERE
    NOT `spine`.`zone_id` IS NULL AND NOT `spine`.`ts` IS NULL
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
    AND `latest`.`_fsql_event_ts` >= TIMESTAMP_SUB(`timeline`.`_fsql_ts`, INTERVAL 1 HOUR)
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
    CAST(`spine`.`ts` AS TIMESTAMP) AS `_fsql_ts`,
    CAST(NULL AS TIMESTAMP) AS `_fsql_event_ts`,
    1 AS `_fsql_is_spine`
  FROM `spine`
  WHERE
    NOT `spine`.`rider_id` IS NULL
    AND NOT `spine`.`driver_id` IS NULL
    AND NOT `spine`.`ts` IS NULL
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
    AND `latest`.`_fsql_event_ts` >= TIMESTAMP_SUB(`timeline`.`_fsql_ts`, INTERVAL 90 DAY)
  WHERE
    `timeline`.`_fsql_is_spine` = 1
)
SELECT
  `spine`.*,
  `zone_demand`.`zone_pressure` AS `zone_pressure`,
  `rider_driver_affinity`.`trips_together` AS `trips_together`,
  `rider_driver_affinity`.`last_rating` AS `last_rating`
FROM `spine`
/* zone_demand: features for the spine row's keys and ts */
LEFT JOIN `zone_demand__pit` AS `zone_demand`
  ON `zone_demand`.`zone_id` = `spine`.`zone_id`
  AND `zone_demand`.`_fsql_ts` = CAST(`spine`.`ts` AS TIMESTAMP)
/* rider_driver_affinity: features for the spine row's keys and ts */
LEFT JOIN `rider_driver_affinity__pit` AS `rider_driver_affinity`
  ON `rider_driver_affinity`.`rider_id` = `spine`.`rider_id`
  AND `rider_driver_affinity`.`driver_id` = `spine`.`driver_id`
  AND `rider_driver_affinity`.`_fsql_ts` = CAST(`spine`.`ts` AS TIMESTAMP)
