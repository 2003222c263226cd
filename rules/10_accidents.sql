-- Accidents as the rules see them: one row per 事故编号 (unique across departments; the latest
-- version wins), with the grade implied by the casualties (国务院令第493号 Art. 3: 以上 includes
-- the number; the highest dimension wins). When the reported grade is lower, the numbers win.
CREATE OR REPLACE TABLE rules.accidents AS
WITH latest AS (
    SELECT * FROM k_accidents_current
    QUALIFY row_number() OVER (PARTITION BY accident_no ORDER BY updated_at DESC, department) = 1
), graded AS (
    SELECT *,
        CASE WHEN coalesce(deaths, 0) >= 30 OR coalesce(serious_injuries, 0) >= 100 OR coalesce(direct_loss_wan, 0) >= 10000 THEN 4
             WHEN coalesce(deaths, 0) >= 10 OR coalesce(serious_injuries, 0) >= 50  OR coalesce(direct_loss_wan, 0) >= 5000  THEN 3
             WHEN coalesce(deaths, 0) >= 3  OR coalesce(serious_injuries, 0) >= 10  OR coalesce(direct_loss_wan, 0) >= 1000  THEN 2
             ELSE 1 END AS numbers_level,
        CASE reported_grade WHEN '特别重大' THEN 4 WHEN '重大' THEN 3 WHEN '较大' THEN 2 WHEN '一般' THEN 1 END AS reported_level
    FROM latest
)
SELECT *,
    greatest(numbers_level, coalesce(reported_level, 1)) AS grade_level,
    ['一般', '较大', '重大', '特别重大'][greatest(numbers_level, coalesce(reported_level, 1))] AS grade,
    coalesce(reported_level, 1) < numbers_level AS grade_corrected,
    CAST(occurred_at AS DATE) AS occurred_date
FROM graded;
