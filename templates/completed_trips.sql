-- Completed trips of at least {{ var('min_trip_km') }} km, as events at the time they completed:
-- a trip's outcome and fare are known only then, so windows over requested_at would leak.
SELECT
  trip_id,
  rider_id,
  driver_id,
  zone_id,
  completed_at,
  fare,
  rating_by_rider
FROM {{ source('trips') }}
WHERE status = 'completed' AND distance_km >= {{ var('min_trip_km') }}
