-- fsql drift of service 'usage': spine windows [2024-03-01, 2024-03-15) and [2024-03-15, 2024-04-01)
-- dialect postgres; a spine window's training query uses strategy lateral; run it in a session whose time zone is UTC
-- one row per feature: null counts, PSI (bins at the reference's quantiles, empty shares as 0.0001),
-- KS for numeric features, PSI and Pearson's chi-square over the categories of categorical ones
WITH "_fsql_reference" AS MATERIALIZED (
  WITH "_fsql_reference__spine" /* spine: the rows asked for, each kept once, labels included */ AS (
    SELECT
      *
    FROM (
      SELECT
        *
      FROM spine
      WHERE
        CAST("event_timestamp" AS TIMESTAMPTZ) >= CAST('2024-03-01T00:00:00+00:00' AS TIMESTAMPTZ)
        AND CAST("event_timestamp" AS TIMESTAMPTZ) < CAST('2024-03-15T00:00:00+00:00' AS TIMESTAMPTZ)
    ) AS "_fsql_reference_spine"
  ), "_fsql_reference__stats__rows" /* stats: feature rows from source 'events' */ AS (
    SELECT
      "user_id",
      "event_ts" AS "_fsql_event_ts",
      "shifted" AS "shifted",
      "steady" AS "steady",
      "visits" AS "visits",
      "plan" AS "plan",
      "region" AS "region",
      "sparse" AS "sparse",
      "active" AS "active",
      "seen_at" AS "seen_at"
    FROM "events"
    WHERE
      NOT "user_id" IS NULL AND NOT "event_ts" IS NULL
  )
  SELECT
    "spine".*,
    "stats"."shifted" AS "shifted",
    "stats"."steady" AS "steady",
    "stats"."visits" AS "visits",
    "stats"."plan" AS "plan",
    "stats"."region" AS "region",
    "stats"."sparse" AS "sparse",
    "stats"."active" AS "active",
    "stats"."seen_at" AS "seen_at"
  FROM "_fsql_reference__spine" AS "spine"
  /* stats: latest row at or before the spine's timestamp, per key */
  LEFT JOIN LATERAL (
    SELECT
      "candidate"."shifted",
      "candidate"."steady",
      "candidate"."visits",
      "candidate"."plan",
      "candidate"."region",
      "candidate"."sparse",
      "candidate"."active",
      "candidate"."seen_at"
    FROM "_fsql_reference__stats__rows" AS "candidate"
    WHERE
      "candidate"."user_id" = "spine"."user_id"
      AND "candidate"."_fsql_event_ts" <= "spine"."event_timestamp"
    ORDER BY
      "candidate"."_fsql_event_ts" DESC
    LIMIT 1
  ) AS "stats"
    ON TRUE
), "_fsql_current" AS MATERIALIZED (
  WITH "_fsql_current__spine" /* spine: the rows asked for, each kept once, labels included */ AS (
    SELECT
      *
    FROM (
      SELECT
        *
      FROM spine
      WHERE
        CAST("event_timestamp" AS TIMESTAMPTZ) >= CAST('2024-03-15T00:00:00+00:00' AS TIMESTAMPTZ)
        AND CAST("event_timestamp" AS TIMESTAMPTZ) < CAST('2024-04-01T00:00:00+00:00' AS TIMESTAMPTZ)
    ) AS "_fsql_current_spine"
  ), "_fsql_current__stats__rows" /* stats: feature rows from source 'events' */ AS (
    SELECT
      "user_id",
      "event_ts" AS "_fsql_event_ts",
      "shifted" AS "shifted",
      "steady" AS "steady",
      "visits" AS "visits",
      "plan" AS "plan",
      "region" AS "region",
      "sparse" AS "sparse",
      "active" AS "active",
      "seen_at" AS "seen_at"
    FROM "events"
    WHERE
      NOT "user_id" IS NULL AND NOT "event_ts" IS NULL
  )
  SELECT
    "spine".*,
    "stats"."shifted" AS "shifted",
    "stats"."steady" AS "steady",
    "stats"."visits" AS "visits",
    "stats"."plan" AS "plan",
    "stats"."region" AS "region",
    "stats"."sparse" AS "sparse",
    "stats"."active" AS "active",
    "stats"."seen_at" AS "seen_at"
  FROM "_fsql_current__spine" AS "spine"
  /* stats: latest row at or before the spine's timestamp, per key */
  LEFT JOIN LATERAL (
    SELECT
      "candidate"."shifted",
      "candidate"."steady",
      "candidate"."visits",
      "candidate"."plan",
      "candidate"."region",
      "candidate"."sparse",
      "candidate"."active",
      "candidate"."seen_at"
    FROM "_fsql_current__stats__rows" AS "candidate"
    WHERE
      "candidate"."user_id" = "spine"."user_id"
      AND "candidate"."_fsql_event_ts" <= "spine"."event_timestamp"
    ORDER BY
      "candidate"."_fsql_event_ts" DESC
    LIMIT 1
  ) AS "stats"
    ON TRUE
), "_fsql_cuts" AS (
  SELECT
    1 AS "k"
  UNION ALL
  SELECT
    2 AS "k"
  UNION ALL
  SELECT
    3 AS "k"
  UNION ALL
  SELECT
    4 AS "k"
  UNION ALL
  SELECT
    5 AS "k"
  UNION ALL
  SELECT
    6 AS "k"
  UNION ALL
  SELECT
    7 AS "k"
  UNION ALL
  SELECT
    8 AS "k"
  UNION ALL
  SELECT
    9 AS "k"
), "_fsql_f0_values" AS (
  SELECT
    0 AS "side",
    "shifted" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_reference"
  WHERE
    NOT "shifted" IS NULL
  GROUP BY
    "shifted"
  UNION ALL
  SELECT
    1 AS "side",
    "shifted" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_current"
  WHERE
    NOT "shifted" IS NULL
  GROUP BY
    "shifted"
), "_fsql_f0_totals" AS (
  SELECT
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r_total",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c_total"
  FROM "_fsql_f0_values"
), "_fsql_f0_edges" AS (
  SELECT DISTINCT
    "ranked"."x" AS "edge"
  FROM (
    SELECT
      "x",
      "n",
      SUM("n") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS "cum",
      SUM("n") OVER () AS "total"
    FROM "_fsql_f0_values"
    WHERE
      "side" = 0
  ) AS "ranked"
  CROSS JOIN "_fsql_cuts" AS "cuts"
  WHERE
    "cuts"."k" < 10
    AND (
      "ranked"."cum" - "ranked"."n"
    ) * 10 < "cuts"."k" * "ranked"."total"
    AND "cuts"."k" * "ranked"."total" <= "ranked"."cum" * 10
), "_fsql_f0_cells" AS (
  SELECT
    "cell",
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
  FROM (
    SELECT
      "side",
      "n",
      "cell"
    FROM (
      SELECT
        "side",
        "n",
        "is_edge",
        SUM("is_edge") OVER (
          ORDER BY "x" NULLS FIRST, "is_edge" NULLS FIRST
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS "cell"
      FROM (
        SELECT
          "side",
          "x",
          "n",
          0 AS "is_edge"
        FROM "_fsql_f0_values"
        UNION ALL
        SELECT
          -1 AS "side",
          "edge" AS "x",
          0 AS "n",
          1 AS "is_edge"
        FROM "_fsql_f0_edges"
      ) AS "marks"
    ) AS "ranked"
    WHERE
      "is_edge" = 0
  ) AS "binned"
  GROUP BY
    "cell"
), "_fsql_f1_values" AS (
  SELECT
    0 AS "side",
    "steady" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_reference"
  WHERE
    NOT "steady" IS NULL
  GROUP BY
    "steady"
  UNION ALL
  SELECT
    1 AS "side",
    "steady" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_current"
  WHERE
    NOT "steady" IS NULL
  GROUP BY
    "steady"
), "_fsql_f1_totals" AS (
  SELECT
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r_total",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c_total"
  FROM "_fsql_f1_values"
), "_fsql_f1_edges" AS (
  SELECT DISTINCT
    "ranked"."x" AS "edge"
  FROM (
    SELECT
      "x",
      "n",
      SUM("n") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS "cum",
      SUM("n") OVER () AS "total"
    FROM "_fsql_f1_values"
    WHERE
      "side" = 0
  ) AS "ranked"
  CROSS JOIN "_fsql_cuts" AS "cuts"
  WHERE
    "cuts"."k" < 10
    AND (
      "ranked"."cum" - "ranked"."n"
    ) * 10 < "cuts"."k" * "ranked"."total"
    AND "cuts"."k" * "ranked"."total" <= "ranked"."cum" * 10
), "_fsql_f1_cells" AS (
  SELECT
    "cell",
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
  FROM (
    SELECT
      "side",
      "n",
      "cell"
    FROM (
      SELECT
        "side",
        "n",
        "is_edge",
        SUM("is_edge") OVER (
          ORDER BY "x" NULLS FIRST, "is_edge" NULLS FIRST
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS "cell"
      FROM (
        SELECT
          "side",
          "x",
          "n",
          0 AS "is_edge"
        FROM "_fsql_f1_values"
        UNION ALL
        SELECT
          -1 AS "side",
          "edge" AS "x",
          0 AS "n",
          1 AS "is_edge"
        FROM "_fsql_f1_edges"
      ) AS "marks"
    ) AS "ranked"
    WHERE
      "is_edge" = 0
  ) AS "binned"
  GROUP BY
    "cell"
), "_fsql_f2_values" AS (
  SELECT
    0 AS "side",
    "visits" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_reference"
  WHERE
    NOT "visits" IS NULL
  GROUP BY
    "visits"
  UNION ALL
  SELECT
    1 AS "side",
    "visits" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_current"
  WHERE
    NOT "visits" IS NULL
  GROUP BY
    "visits"
), "_fsql_f2_totals" AS (
  SELECT
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r_total",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c_total"
  FROM "_fsql_f2_values"
), "_fsql_f2_edges" AS (
  SELECT DISTINCT
    "ranked"."x" AS "edge"
  FROM (
    SELECT
      "x",
      "n",
      SUM("n") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS "cum",
      SUM("n") OVER () AS "total"
    FROM "_fsql_f2_values"
    WHERE
      "side" = 0
  ) AS "ranked"
  CROSS JOIN "_fsql_cuts" AS "cuts"
  WHERE
    "cuts"."k" < 10
    AND (
      "ranked"."cum" - "ranked"."n"
    ) * 10 < "cuts"."k" * "ranked"."total"
    AND "cuts"."k" * "ranked"."total" <= "ranked"."cum" * 10
), "_fsql_f2_cells" AS (
  SELECT
    "cell",
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
  FROM (
    SELECT
      "side",
      "n",
      "cell"
    FROM (
      SELECT
        "side",
        "n",
        "is_edge",
        SUM("is_edge") OVER (
          ORDER BY "x" NULLS FIRST, "is_edge" NULLS FIRST
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS "cell"
      FROM (
        SELECT
          "side",
          "x",
          "n",
          0 AS "is_edge"
        FROM "_fsql_f2_values"
        UNION ALL
        SELECT
          -1 AS "side",
          "edge" AS "x",
          0 AS "n",
          1 AS "is_edge"
        FROM "_fsql_f2_edges"
      ) AS "marks"
    ) AS "ranked"
    WHERE
      "is_edge" = 0
  ) AS "binned"
  GROUP BY
    "cell"
), "_fsql_f3_values" AS (
  SELECT
    0 AS "side",
    "plan" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_reference"
  WHERE
    NOT "plan" IS NULL
  GROUP BY
    "plan"
  UNION ALL
  SELECT
    1 AS "side",
    "plan" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_current"
  WHERE
    NOT "plan" IS NULL
  GROUP BY
    "plan"
), "_fsql_f3_totals" AS (
  SELECT
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r_total",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c_total"
  FROM "_fsql_f3_values"
), "_fsql_f3_cells" AS (
  SELECT
    "cell",
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
  FROM (
    SELECT
      "side",
      "n",
      "x" AS "cell"
    FROM "_fsql_f3_values"
  ) AS "binned"
  GROUP BY
    "cell"
), "_fsql_f4_values" AS (
  SELECT
    0 AS "side",
    "region" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_reference"
  WHERE
    NOT "region" IS NULL
  GROUP BY
    "region"
  UNION ALL
  SELECT
    1 AS "side",
    "region" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_current"
  WHERE
    NOT "region" IS NULL
  GROUP BY
    "region"
), "_fsql_f4_totals" AS (
  SELECT
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r_total",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c_total"
  FROM "_fsql_f4_values"
), "_fsql_f4_cells" AS (
  SELECT
    "cell",
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
  FROM (
    SELECT
      "side",
      "n",
      "x" AS "cell"
    FROM "_fsql_f4_values"
  ) AS "binned"
  GROUP BY
    "cell"
), "_fsql_f5_values" AS (
  SELECT
    0 AS "side",
    "sparse" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_reference"
  WHERE
    NOT "sparse" IS NULL
  GROUP BY
    "sparse"
  UNION ALL
  SELECT
    1 AS "side",
    "sparse" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_current"
  WHERE
    NOT "sparse" IS NULL
  GROUP BY
    "sparse"
), "_fsql_f5_totals" AS (
  SELECT
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r_total",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c_total"
  FROM "_fsql_f5_values"
), "_fsql_f5_edges" AS (
  SELECT DISTINCT
    "ranked"."x" AS "edge"
  FROM (
    SELECT
      "x",
      "n",
      SUM("n") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS "cum",
      SUM("n") OVER () AS "total"
    FROM "_fsql_f5_values"
    WHERE
      "side" = 0
  ) AS "ranked"
  CROSS JOIN "_fsql_cuts" AS "cuts"
  WHERE
    "cuts"."k" < 10
    AND (
      "ranked"."cum" - "ranked"."n"
    ) * 10 < "cuts"."k" * "ranked"."total"
    AND "cuts"."k" * "ranked"."total" <= "ranked"."cum" * 10
), "_fsql_f5_cells" AS (
  SELECT
    "cell",
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
  FROM (
    SELECT
      "side",
      "n",
      "cell"
    FROM (
      SELECT
        "side",
        "n",
        "is_edge",
        SUM("is_edge") OVER (
          ORDER BY "x" NULLS FIRST, "is_edge" NULLS FIRST
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS "cell"
      FROM (
        SELECT
          "side",
          "x",
          "n",
          0 AS "is_edge"
        FROM "_fsql_f5_values"
        UNION ALL
        SELECT
          -1 AS "side",
          "edge" AS "x",
          0 AS "n",
          1 AS "is_edge"
        FROM "_fsql_f5_edges"
      ) AS "marks"
    ) AS "ranked"
    WHERE
      "is_edge" = 0
  ) AS "binned"
  GROUP BY
    "cell"
), "_fsql_f6_values" AS (
  SELECT
    0 AS "side",
    "active" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_reference"
  WHERE
    NOT "active" IS NULL
  GROUP BY
    "active"
  UNION ALL
  SELECT
    1 AS "side",
    "active" AS "x",
    COUNT(*) AS "n"
  FROM "_fsql_current"
  WHERE
    NOT "active" IS NULL
  GROUP BY
    "active"
), "_fsql_f6_totals" AS (
  SELECT
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r_total",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c_total"
  FROM "_fsql_f6_values"
), "_fsql_f6_cells" AS (
  SELECT
    "cell",
    COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
    COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
  FROM (
    SELECT
      "side",
      "n",
      "x" AS "cell"
    FROM "_fsql_f6_values"
  ) AS "binned"
  GROUP BY
    "cell"
)
SELECT
  *
FROM (
  SELECT
    CAST('shifted' AS TEXT) AS "feature",
    CAST('numeric' AS TEXT) AS "kind",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_reference"
    ) AS BIGINT) AS "reference_rows",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_current"
    ) AS BIGINT) AS "current_rows",
    CAST("t"."r_total" AS BIGINT) AS "reference_values",
    CAST("t"."c_total" AS BIGINT) AS "current_values",
    CAST("s"."psi" AS DOUBLE PRECISION) AS "psi",
    CAST((
      SELECT
        MAX("gap") AS "ks"
      FROM (
        SELECT
          ABS(
            CAST(SUM("r") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."r_total", 0) AS DOUBLE PRECISION) - CAST(SUM("c") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."c_total", 0) AS DOUBLE PRECISION)
          ) AS "gap"
        FROM (
          SELECT
            "x",
            COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
            COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
          FROM "_fsql_f0_values"
          GROUP BY
            "x"
        ) AS "per_value"
        CROSS JOIN "_fsql_f0_totals" AS "t"
      ) AS "gaps"
    ) AS DOUBLE PRECISION) AS "ks",
    CAST("s"."chi2" AS DOUBLE PRECISION) AS "chi2",
    CAST("s"."bins" AS BIGINT) AS "bins"
  FROM "_fsql_f0_totals" AS "t"
  CROSS JOIN (
    SELECT
      SUM(
        (
          CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END - CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        ) * LN(
          CAST(CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END AS DOUBLE PRECISION) / CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        )
      ) AS "psi",
      NULL AS "chi2",
      COUNT(*) AS "bins"
    FROM "_fsql_f0_cells" AS "cells"
    CROSS JOIN "_fsql_f0_totals" AS "t"
  ) AS "s"
  UNION ALL
  SELECT
    CAST('steady' AS TEXT) AS "feature",
    CAST('numeric' AS TEXT) AS "kind",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_reference"
    ) AS BIGINT) AS "reference_rows",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_current"
    ) AS BIGINT) AS "current_rows",
    CAST("t"."r_total" AS BIGINT) AS "reference_values",
    CAST("t"."c_total" AS BIGINT) AS "current_values",
    CAST("s"."psi" AS DOUBLE PRECISION) AS "psi",
    CAST((
      SELECT
        MAX("gap") AS "ks"
      FROM (
        SELECT
          ABS(
            CAST(SUM("r") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."r_total", 0) AS DOUBLE PRECISION) - CAST(SUM("c") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."c_total", 0) AS DOUBLE PRECISION)
          ) AS "gap"
        FROM (
          SELECT
            "x",
            COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
            COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
          FROM "_fsql_f1_values"
          GROUP BY
            "x"
        ) AS "per_value"
        CROSS JOIN "_fsql_f1_totals" AS "t"
      ) AS "gaps"
    ) AS DOUBLE PRECISION) AS "ks",
    CAST("s"."chi2" AS DOUBLE PRECISION) AS "chi2",
    CAST("s"."bins" AS BIGINT) AS "bins"
  FROM "_fsql_f1_totals" AS "t"
  CROSS JOIN (
    SELECT
      SUM(
        (
          CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END - CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        ) * LN(
          CAST(CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END AS DOUBLE PRECISION) / CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        )
      ) AS "psi",
      NULL AS "chi2",
      COUNT(*) AS "bins"
    FROM "_fsql_f1_cells" AS "cells"
    CROSS JOIN "_fsql_f1_totals" AS "t"
  ) AS "s"
  UNION ALL
  SELECT
    CAST('visits' AS TEXT) AS "feature",
    CAST('numeric' AS TEXT) AS "kind",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_reference"
    ) AS BIGINT) AS "reference_rows",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_current"
    ) AS BIGINT) AS "current_rows",
    CAST("t"."r_total" AS BIGINT) AS "reference_values",
    CAST("t"."c_total" AS BIGINT) AS "current_values",
    CAST("s"."psi" AS DOUBLE PRECISION) AS "psi",
    CAST((
      SELECT
        MAX("gap") AS "ks"
      FROM (
        SELECT
          ABS(
            CAST(SUM("r") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."r_total", 0) AS DOUBLE PRECISION) - CAST(SUM("c") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."c_total", 0) AS DOUBLE PRECISION)
          ) AS "gap"
        FROM (
          SELECT
            "x",
            COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
            COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
          FROM "_fsql_f2_values"
          GROUP BY
            "x"
        ) AS "per_value"
        CROSS JOIN "_fsql_f2_totals" AS "t"
      ) AS "gaps"
    ) AS DOUBLE PRECISION) AS "ks",
    CAST("s"."chi2" AS DOUBLE PRECISION) AS "chi2",
    CAST("s"."bins" AS BIGINT) AS "bins"
  FROM "_fsql_f2_totals" AS "t"
  CROSS JOIN (
    SELECT
      SUM(
        (
          CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END - CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        ) * LN(
          CAST(CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END AS DOUBLE PRECISION) / CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        )
      ) AS "psi",
      NULL AS "chi2",
      COUNT(*) AS "bins"
    FROM "_fsql_f2_cells" AS "cells"
    CROSS JOIN "_fsql_f2_totals" AS "t"
  ) AS "s"
  UNION ALL
  SELECT
    CAST('plan' AS TEXT) AS "feature",
    CAST('categorical' AS TEXT) AS "kind",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_reference"
    ) AS BIGINT) AS "reference_rows",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_current"
    ) AS BIGINT) AS "current_rows",
    CAST("t"."r_total" AS BIGINT) AS "reference_values",
    CAST("t"."c_total" AS BIGINT) AS "current_values",
    CAST("s"."psi" AS DOUBLE PRECISION) AS "psi",
    CAST(NULL AS DOUBLE PRECISION) AS "ks",
    CAST("s"."chi2" AS DOUBLE PRECISION) AS "chi2",
    CAST("s"."bins" AS BIGINT) AS "bins"
  FROM "_fsql_f3_totals" AS "t"
  CROSS JOIN (
    SELECT
      SUM(
        (
          CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END - CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        ) * LN(
          CAST(CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END AS DOUBLE PRECISION) / CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        )
      ) AS "psi",
      SUM(
        CAST((
          CAST("cells"."r" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) * (
          CAST("cells"."r" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) AS DOUBLE PRECISION) / (
          CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
            CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
          ) AS DOUBLE PRECISION) / (
            CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
          )
        ) + CAST((
          CAST("cells"."c" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) * (
          CAST("cells"."c" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) AS DOUBLE PRECISION) / (
          CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
            CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
          ) AS DOUBLE PRECISION) / (
            CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
          )
        )
      ) AS "chi2",
      COUNT(*) AS "bins"
    FROM "_fsql_f3_cells" AS "cells"
    CROSS JOIN "_fsql_f3_totals" AS "t"
  ) AS "s"
  UNION ALL
  SELECT
    CAST('region' AS TEXT) AS "feature",
    CAST('categorical' AS TEXT) AS "kind",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_reference"
    ) AS BIGINT) AS "reference_rows",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_current"
    ) AS BIGINT) AS "current_rows",
    CAST("t"."r_total" AS BIGINT) AS "reference_values",
    CAST("t"."c_total" AS BIGINT) AS "current_values",
    CAST("s"."psi" AS DOUBLE PRECISION) AS "psi",
    CAST(NULL AS DOUBLE PRECISION) AS "ks",
    CAST("s"."chi2" AS DOUBLE PRECISION) AS "chi2",
    CAST("s"."bins" AS BIGINT) AS "bins"
  FROM "_fsql_f4_totals" AS "t"
  CROSS JOIN (
    SELECT
      SUM(
        (
          CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END - CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        ) * LN(
          CAST(CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END AS DOUBLE PRECISION) / CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        )
      ) AS "psi",
      SUM(
        CAST((
          CAST("cells"."r" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) * (
          CAST("cells"."r" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) AS DOUBLE PRECISION) / (
          CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
            CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
          ) AS DOUBLE PRECISION) / (
            CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
          )
        ) + CAST((
          CAST("cells"."c" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) * (
          CAST("cells"."c" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) AS DOUBLE PRECISION) / (
          CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
            CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
          ) AS DOUBLE PRECISION) / (
            CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
          )
        )
      ) AS "chi2",
      COUNT(*) AS "bins"
    FROM "_fsql_f4_cells" AS "cells"
    CROSS JOIN "_fsql_f4_totals" AS "t"
  ) AS "s"
  UNION ALL
  SELECT
    CAST('sparse' AS TEXT) AS "feature",
    CAST('numeric' AS TEXT) AS "kind",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_reference"
    ) AS BIGINT) AS "reference_rows",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_current"
    ) AS BIGINT) AS "current_rows",
    CAST("t"."r_total" AS BIGINT) AS "reference_values",
    CAST("t"."c_total" AS BIGINT) AS "current_values",
    CAST("s"."psi" AS DOUBLE PRECISION) AS "psi",
    CAST((
      SELECT
        MAX("gap") AS "ks"
      FROM (
        SELECT
          ABS(
            CAST(SUM("r") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."r_total", 0) AS DOUBLE PRECISION) - CAST(SUM("c") OVER (ORDER BY "x" NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE PRECISION) / CAST(NULLIF("t"."c_total", 0) AS DOUBLE PRECISION)
          ) AS "gap"
        FROM (
          SELECT
            "x",
            COALESCE(SUM(CASE WHEN "side" = 0 THEN "n" ELSE 0 END), 0) AS "r",
            COALESCE(SUM(CASE WHEN "side" = 1 THEN "n" ELSE 0 END), 0) AS "c"
          FROM "_fsql_f5_values"
          GROUP BY
            "x"
        ) AS "per_value"
        CROSS JOIN "_fsql_f5_totals" AS "t"
      ) AS "gaps"
    ) AS DOUBLE PRECISION) AS "ks",
    CAST("s"."chi2" AS DOUBLE PRECISION) AS "chi2",
    CAST("s"."bins" AS BIGINT) AS "bins"
  FROM "_fsql_f5_totals" AS "t"
  CROSS JOIN (
    SELECT
      SUM(
        (
          CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END - CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        ) * LN(
          CAST(CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END AS DOUBLE PRECISION) / CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        )
      ) AS "psi",
      NULL AS "chi2",
      COUNT(*) AS "bins"
    FROM "_fsql_f5_cells" AS "cells"
    CROSS JOIN "_fsql_f5_totals" AS "t"
  ) AS "s"
  UNION ALL
  SELECT
    CAST('active' AS TEXT) AS "feature",
    CAST('categorical' AS TEXT) AS "kind",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_reference"
    ) AS BIGINT) AS "reference_rows",
    CAST((
      SELECT
        COUNT(*)
      FROM "_fsql_current"
    ) AS BIGINT) AS "current_rows",
    CAST("t"."r_total" AS BIGINT) AS "reference_values",
    CAST("t"."c_total" AS BIGINT) AS "current_values",
    CAST("s"."psi" AS DOUBLE PRECISION) AS "psi",
    CAST(NULL AS DOUBLE PRECISION) AS "ks",
    CAST("s"."chi2" AS DOUBLE PRECISION) AS "chi2",
    CAST("s"."bins" AS BIGINT) AS "bins"
  FROM "_fsql_f6_totals" AS "t"
  CROSS JOIN (
    SELECT
      SUM(
        (
          CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END - CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        ) * LN(
          CAST(CASE
            WHEN "cells"."c" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."c" AS DOUBLE PRECISION) / CAST("t"."c_total" AS DOUBLE PRECISION)
          END AS DOUBLE PRECISION) / CASE
            WHEN "cells"."r" = 0
            THEN CAST(0.0001 AS DOUBLE PRECISION)
            ELSE CAST("cells"."r" AS DOUBLE PRECISION) / CAST("t"."r_total" AS DOUBLE PRECISION)
          END
        )
      ) AS "psi",
      SUM(
        CAST((
          CAST("cells"."r" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) * (
          CAST("cells"."r" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) AS DOUBLE PRECISION) / (
          CAST(CAST("t"."r_total" AS DOUBLE PRECISION) * (
            CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
          ) AS DOUBLE PRECISION) / (
            CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
          )
        ) + CAST((
          CAST("cells"."c" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) * (
          CAST("cells"."c" AS DOUBLE PRECISION) - (
            CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
              CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
            ) AS DOUBLE PRECISION) / (
              CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
            )
          )
        ) AS DOUBLE PRECISION) / (
          CAST(CAST("t"."c_total" AS DOUBLE PRECISION) * (
            CAST("cells"."r" AS DOUBLE PRECISION) + CAST("cells"."c" AS DOUBLE PRECISION)
          ) AS DOUBLE PRECISION) / (
            CAST("t"."r_total" AS DOUBLE PRECISION) + CAST("t"."c_total" AS DOUBLE PRECISION)
          )
        )
      ) AS "chi2",
      COUNT(*) AS "bins"
    FROM "_fsql_f6_cells" AS "cells"
    CROSS JOIN "_fsql_f6_totals" AS "t"
  ) AS "s"
) AS "_fsql_drift"
ORDER BY
  "feature" NULLS FIRST
