-- Benchmark only (`manage.py benchnear`): 1,000,000 more Locations scattered within ±0.15 degrees
-- of the generated ones (same cities), each with its position index row, to measure `near` at
-- national scale. Run on a generated directory (`manage.py generatedirectory`), never on real data:
-- these rows have no history version. psql -f bench/near_locations.sql DATABASE
BEGIN;
CREATE TEMP TABLE centres AS
  SELECT row_number() OVER (ORDER BY resource_id) - 1 AS n, latitude, longitude
  FROM directory_positionindex;
CREATE TEMP TABLE extra AS
  SELECT g, c.latitude + (random() - 0.5) * 0.3 AS lat, c.longitude + (random() - 0.5) * 0.3 AS lon
  FROM generate_series(1, 1000000) g
  JOIN centres c ON c.n = g % (SELECT count(*) FROM centres);
INSERT INTO directory_resource (resource_type, logical_id, version_id, last_updated, deleted, content, sort_name)
  SELECT 'Location', 'xloc-' || g, 1, now() - interval '1 day', false,
         json_build_object('resourceType', 'Location', 'id', 'xloc-' || g, 'name', 'Extra ' || g,
                           'position', json_build_object('latitude', lat, 'longitude', lon))::text,
         'extra ' || g
  FROM extra;
INSERT INTO directory_positionindex (resource_id, resource_type, param, band, latitude, longitude)
  SELECT r.id, 'Location', 'near', floor(e.lat), e.lat, e.lon
  FROM extra e JOIN directory_resource r ON r.resource_type = 'Location' AND r.logical_id = 'xloc-' || e.g;
COMMIT;
VACUUM ANALYZE directory_resource;
VACUUM ANALYZE directory_positionindex;
