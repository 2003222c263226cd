-- Work-injury insurance rate floating (工伤保险浮动费率; rules.md §7a) as of params.as_of: one row per
-- registry unit in rules.injury_insurance_factors, with its inputs and a suggested step.
--
-- Policy contracts/policy/*/injury_insurance.yaml:
--   class   the unit's GB/T 4754 division (大类: the two digits after the 门类 letter of QY_HYDM)
--           in policy_injury_classes (人社部发〔2015〕71号's eight classes, base rate in % of payroll);
--           no match → injury_insurance.unknown_class, flagged `unclassified`.
--   inputs  accidents attributed to the unit (rules.accidents_by_unit) that occurred in the window
--           (as_of − window_months, as_of], their deaths and serious injuries; `listed` (a listed
--           entry on as_of, rules.blacklist); the credit grade (rules.credit_scores); 标准化 level.
--   step    Σ delta of the step rules the unit meets (policy_injury_step_rules, in their order),
--           clamped to the class's [min_step, max_step]; multiplier from policy_injury_steps;
--           suggested_rate_percent = base_rate_percent × multiplier, rounded to 4 decimals.
-- The worksheet carries every input and every rule (met or not, with its delta and basis), the raw
-- sum, the bounds, the step and the multiplier: an insurer or bureau recomputes the answer from it.
CREATE OR REPLACE TABLE rules.injury_insurance_factors AS
WITH cfg AS (
    SELECT as_of, policy_version,
           CAST(pol('injury_insurance.window_months') AS INTEGER) AS window_months,
           CAST(pol('injury_insurance.unknown_class') AS INTEGER) AS unknown_class,
           coalesce(TRY_CAST(pol('injury_insurance.accidents_liability_only') AS BOOLEAN), true) AS liability_only,
           CAST(as_of - to_months(CAST(pol('injury_insurance.window_months') AS INTEGER)) AS DATE) AS window_after
    FROM params
), classes AS (
    SELECT CAST(class AS INTEGER) AS class, CAST(base_rate_percent AS DECIMAL(8, 4)) AS base_rate_percent,
           CAST(min_step AS INTEGER) AS min_step, CAST(max_step AS INTEGER) AS max_step, basis,
           string_split(replace(CAST(divisions AS VARCHAR), ' ', ''), ',') AS divisions
    FROM policy_injury_classes
), division_class AS (
    SELECT unnest(divisions) AS division, class FROM classes
), step_rules AS (
    SELECT list({code: code, label: label, delta: CAST(delta AS INTEGER), min_count: CAST(min_count AS INTEGER),
                 value: CAST(value AS VARCHAR), basis: basis} ORDER BY rowid) AS items
    FROM policy_injury_step_rules
), steps AS (
    SELECT CAST(step AS INTEGER) AS step, CAST(multiplier AS DECIMAL(8, 4)) AS multiplier FROM policy_injury_steps
), accidents AS (
    SELECT a.uscc, count(*) AS accidents_all,
           count(*) FILTER (WHERE a.is_liability OR NOT c.liability_only) AS accidents,
           coalesce(sum(a.deaths) FILTER (WHERE a.is_liability OR NOT c.liability_only), 0) AS deaths,
           coalesce(sum(a.serious_injuries) FILTER (WHERE a.is_liability OR NOT c.liability_only), 0) AS serious_injuries,
           list({accident_no: a.accident_no, occurred_date: a.occurred_date, grade: a.grade, liability: a.liability,
                 deaths: a.deaths, serious_injuries: a.serious_injuries, department: a.department,
                 record_id: a.record_id} ORDER BY a.occurred_date, a.accident_no) AS accident_items
    FROM rules.accidents_by_unit a CROSS JOIN cfg c
    WHERE a.uscc IS NOT NULL AND a.occurred_date > c.window_after AND a.occurred_date <= c.as_of
    GROUP BY a.uscc
), listed AS (
    SELECT subject_id AS uscc, min(entry_id) AS entry_id
    FROM rules.blacklist WHERE subject_type = 'unit' AND status = 'listed' GROUP BY subject_id
), units AS (
    SELECT r.uscc, r.name, r.industry_code,
           regexp_extract(coalesce(r.industry_code, ''), '^[A-Za-z]?([0-9]{2})', 1) AS division,
           coalesce(nullif(r.standardization, ''), '无') AS standardization,
           cs.grade AS credit_grade,
           l.entry_id AS listed_entry_id,
           coalesce(a.accidents_all, 0) AS accidents_all, coalesce(a.accidents, 0) AS accidents,
           CAST(coalesce(a.deaths, 0) AS BIGINT) AS deaths, CAST(coalesce(a.serious_injuries, 0) AS BIGINT) AS serious_injuries,
           coalesce(a.accident_items, []) AS accident_items
    FROM subjects.registry r
    LEFT JOIN rules.credit_scores cs ON cs.uscc = r.uscc
    LEFT JOIN listed l ON l.uscc = r.uscc
    LEFT JOIN accidents a ON a.uscc = r.uscc
), classed AS (
    SELECT u.*, dc.class IS NULL AS unclassified, coalesce(dc.class, c.unknown_class) AS injury_class
    FROM units u CROSS JOIN cfg c
    LEFT JOIN division_class dc ON dc.division = u.division
), evaluated AS (
    SELECT x.*, k.base_rate_percent, k.min_step, k.max_step, k.basis AS class_basis,
           list_transform(s.items, lambda j: {
               code: j.code, label: j.label, delta: j.delta, basis: j.basis,
               met: CASE j.code
                   WHEN 'LISTED' THEN x.listed_entry_id IS NOT NULL
                   WHEN 'FATAL_ACCIDENT' THEN x.deaths >= coalesce(j.min_count, 1)
                   WHEN 'REPEATED_ACCIDENTS' THEN x.accidents >= coalesce(j.min_count, 2)
                   WHEN 'NO_ACCIDENT' THEN x.accidents_all = 0
                   WHEN 'CREDIT_GRADE' THEN coalesce(x.credit_grade = j.value, false)
                   WHEN 'STANDARDIZATION' THEN x.standardization = j.value
                   ELSE false END}) AS rule_items
    FROM classed x
    CROSS JOIN step_rules s
    JOIN classes k ON k.class = x.injury_class
), stepped AS (
    SELECT e.*,
           CAST(coalesce(list_sum(list_transform(e.rule_items, lambda j: CASE WHEN j.met THEN j.delta ELSE 0 END)), 0) AS INTEGER) AS raw_step
    FROM evaluated e
), clamped AS (
    SELECT s.*, greatest(s.min_step, least(s.max_step, s.raw_step)) AS step FROM stepped s
)
SELECT c.uscc, c.name, c.industry_code, c.division, c.injury_class, c.unclassified, c.base_rate_percent,
       c.accidents, c.deaths, c.serious_injuries,
       c.listed_entry_id IS NOT NULL AS listed, c.credit_grade, c.standardization,
       c.step, st.multiplier,
       CAST(round(c.base_rate_percent * st.multiplier, 4) AS DECIMAL(10, 4)) AS suggested_rate_percent,
       {industry_code: c.industry_code, division: c.division, injury_class: c.injury_class,
        unclassified: c.unclassified, class_basis: c.class_basis, base_rate_percent: c.base_rate_percent,
        window_start: CAST(cfg.window_after + 1 AS DATE), window_end: cfg.as_of,
        accidents_all: c.accidents_all, accidents: c.accidents, liability_only: cfg.liability_only,
        deaths: c.deaths, serious_injuries: c.serious_injuries, accident_items: c.accident_items,
        listed_entry_id: c.listed_entry_id, credit_grade: c.credit_grade, standardization: c.standardization,
        rules: c.rule_items, raw_step: c.raw_step, min_step: c.min_step, max_step: c.max_step,
        step: c.step, multiplier: st.multiplier} AS worksheet,
       cfg.policy_version, cfg.as_of
FROM clamped c
CROSS JOIN cfg
LEFT JOIN steps st ON st.step = c.step;
