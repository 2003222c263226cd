-- Accidents as the rules see them, with the grade implied by the casualties (国务院令第493号 Art. 3:
-- 以上 includes the number; the highest dimension wins). When the reported grade is lower, the
-- numbers win.
--
-- rules.accident_versions: every upsert version of every accident record, graded, so an entry that
-- an earlier version supported (A1, A2) and the accident's version in force no longer does — it was
-- revoked, or regraded below the ground — turns `revoked` instead of vanishing (rules.md §3).
-- rules.accidents: one row per 事故编号 (unique across departments; the latest version in force wins).
CREATE OR REPLACE TABLE rules.accident_versions AS
WITH graded AS (
    SELECT *,
        CASE WHEN coalesce(deaths, 0) >= 30 OR coalesce(serious_injuries, 0) >= 100 OR coalesce(direct_loss_wan, 0) >= 10000 THEN 4
             WHEN coalesce(deaths, 0) >= 10 OR coalesce(serious_injuries, 0) >= 50  OR coalesce(direct_loss_wan, 0) >= 5000  THEN 3
             WHEN coalesce(deaths, 0) >= 3  OR coalesce(serious_injuries, 0) >= 10  OR coalesce(direct_loss_wan, 0) >= 1000  THEN 2
             ELSE 1 END AS numbers_level,
        CASE reported_grade WHEN '特别重大' THEN 4 WHEN '重大' THEN 3 WHEN '较大' THEN 2 WHEN '一般' THEN 1 END AS reported_level
    FROM k_accidents WHERE op = 'upsert'
)
SELECT *,
    greatest(numbers_level, coalesce(reported_level, 1)) AS grade_level,
    ['一般', '较大', '重大', '特别重大'][greatest(numbers_level, coalesce(reported_level, 1))] AS grade,
    coalesce(reported_level, 1) < numbers_level AS grade_corrected,
    CAST(occurred_at AS DATE) AS occurred_date
FROM graded;

CREATE OR REPLACE TABLE rules.accidents AS
SELECT v.* FROM rules.accident_versions v
SEMI JOIN k_accidents_current c
  ON c.department = v.department AND c.record_id = v.record_id AND c.updated_at = v.updated_at
QUALIFY row_number() OVER (PARTITION BY accident_no ORDER BY updated_at DESC, department) = 1;
