-- One row per rider and day of completed trips of at least {{ var('min_trip_km') }} km.
SELECT
  rider_id,
  {{ day_end('completed_at') }} AS day_end_ts,
  count(*) AS trips,
  sum(fare) AS spend,
  avg(rating_by_rider) AS avg_rating_given
FROM {{ source('trips') }}
WHERE status = 'completed' AND distance_km >= {{ var('min_trip_km') }}
GROUP BY rider_id, day_end_ts
