-- Safety liability insurance premium factor (rules.md §7) as of params.as_of, one row per registry
-- unit: rules.premium_factors (factor, validity, worksheet) and rules.premium_factor_components
-- (the adjustments or losses behind it, each citing its record, or skipped with the reason).
--
-- Model by policy (contracts/policy/*/premium.yaml, premium.model):
--   floating    factor = 1 + Σ adjustments (policy_premium_adjustments) over the window
--   experience  NCCI mod = (Ap + W·Ae + (1−W)·Ee + B) / (E + B)
-- Both clamped to 1 + cap.low … 1 + cap.high. While listed: the LISTED adjustment (surcharge) or
-- the top of the range (listed_rule = top_of_range). Accidents come from rules.accidents_by_unit
-- (50_credit_scores.sql). A window of N months counts an event when as_of − N months < date ≤ as_of.

CREATE OR REPLACE TEMP TABLE pf_cfg AS
WITH c AS (
    SELECT p.as_of, p.policy_version,
        pol('premium.model') AS model,
        CAST(1 + CAST(pol('premium.cap.low') AS DECIMAL(8, 4)) AS DECIMAL(8, 4)) AS cap_low,
        CAST(1 + CAST(pol('premium.cap.high') AS DECIMAL(8, 4)) AS DECIMAL(8, 4)) AS cap_high,
        CAST(pol('premium.valid_months') AS INTEGER) AS valid_months,
        pol('premium.listed_rule') AS listed_rule,
        CAST(pol('premium.floating.months') AS INTEGER) AS fl_months,
        pol('premium.floating.accidents_liability_only') = 'true' AS fl_liability_only,
        CAST(pol('premium.experience.months') AS INTEGER) AS ex_months,
        pol('premium.experience.accidents_liability_only') = 'true' AS ex_liability_only,
        CAST(pol('premium.experience.loss_per_death_wan') AS DECIMAL(18, 4)) AS loss_per_death_wan,
        CAST(pol('premium.experience.loss_per_serious_injury_wan') AS DECIMAL(18, 4)) AS loss_per_serious_injury_wan,
        CAST(pol('premium.experience.direct_loss_weight') AS DECIMAL(18, 4)) AS direct_loss_weight,
        CAST(pol('premium.experience.split_point_wan') AS DECIMAL(18, 4)) AS split_point_wan,
        CAST(pol('premium.experience.primary_ratio') AS DECIMAL(18, 4)) AS primary_ratio,
        CAST(pol('premium.experience.ballast_wan') AS DECIMAL(18, 4)) AS ballast_wan,
        CAST(pol('premium.experience.ballast_per_expected') AS DECIMAL(18, 4)) AS ballast_per_expected,
        CAST(pol('premium.experience.weight_k_wan') AS DECIMAL(18, 4)) AS weight_k_wan,
        CAST(pol('premium.experience.weight_max') AS DECIMAL(18, 4)) AS weight_max,
        CAST(pol('premium.experience.default_rate_wan') AS DECIMAL(18, 6)) AS default_rate_wan
    FROM params p
)
SELECT *,
    CAST(as_of - to_months(fl_months) AS DATE) AS fl_after,
    CAST(as_of - to_months(ex_months) AS DATE) AS ex_after,
    CAST(ex_months / 12 AS DECIMAL(18, 4)) AS ex_years,
    CAST(as_of + to_months(valid_months) - INTERVAL 1 DAY AS DATE) AS valid_to
FROM c;

-- the adjustment table with how the rules treat each row (skip_reason NULL = computed)
CREATE OR REPLACE TEMP TABLE pf_adjustments AS
SELECT rowid AS ord, code, label, CAST(value AS DECIMAL(8, 4)) AS value, basis,
       CAST(min_grade_level AS INTEGER) AS min_grade_level, CAST(max_grade_level AS INTEGER) AS max_grade_level,
       CASE WHEN NOT coalesce(enabled, true) THEN '政策未启用 / disabled by policy'
            WHEN code IN ('NO_ACCIDENT', 'LISTED') OR min_grade_level IS NOT NULL THEN NULL
            ELSE '暂无数据来源 / no source dataset yet' || coalesce(': ' || dataset, '') END AS skip_reason
FROM policy_premium_adjustments;

CREATE OR REPLACE TEMP TABLE pf_units AS
SELECT r.uscc, r.name, coalesce(nullif(r.high_risk_industry, ''), '无') AS industry, r.employees,
       coalesce(r.high_risk_industry IN (SELECT industry FROM policy_premium_mandatory_industries), false) AS mandatory
FROM subjects.registry r;

-- the unit's earliest `listed` entry (one is enough for the surcharge)
CREATE OR REPLACE TEMP TABLE pf_listed AS
SELECT subject_id AS uscc,
       arg_min({entry_id: entry_id, start_date: start_date, source_department: source_department,
                source_record_id: source_record_id, decision_no: decision_no}, (start_date, entry_id)) AS e
FROM rules.blacklist
WHERE subject_type = 'unit' AND status = 'listed'
GROUP BY subject_id;

CREATE OR REPLACE TEMP TABLE pf_losses AS
SELECT a.uscc, a.accident_no, a.occurred_date, a.grade, a.deaths, a.serious_injuries, a.direct_loss_wan,
       a.department, a.record_id, l.loss, least(l.loss, c.split_point_wan) AS primary_loss
FROM rules.accidents_by_unit a CROSS JOIN pf_cfg c,
     LATERAL (SELECT CAST(a.deaths * c.loss_per_death_wan + a.serious_injuries * c.loss_per_serious_injury_wan
                          + a.direct_loss_wan * c.direct_loss_weight AS DECIMAL(18, 4)) AS loss) l
WHERE a.occurred_date > c.ex_after AND (a.is_liability OR NOT c.ex_liability_only);

CREATE OR REPLACE TABLE rules.premium_factor_components AS
WITH fl_accidents AS (
    SELECT a.* FROM rules.accidents_by_unit a, pf_cfg c
    WHERE a.occurred_date > c.fl_after AND (a.is_liability OR NOT c.fl_liability_only)
), listed_row AS (
    SELECT l.uscc, j.code AS adjustment, j.label,
           CASE WHEN c.listed_rule = 'top_of_range' THEN NULL ELSE j.value END AS value,
           'applied' AS status,
           CASE WHEN c.listed_rule = 'top_of_range' THEN '列入名单期间取费率区间上限 / top of the range while listed' END AS reason,
           l.e.start_date AS event_date, l.e.source_department AS source_department, 'blacklist' AS source_dataset,
           l.e.source_record_id AS source_record_id, l.e.decision_no AS decision_no_or_accident_no
    FROM pf_listed l, pf_adjustments j, pf_cfg c
    WHERE j.code = 'LISTED' AND j.skip_reason IS NULL
), floating AS (
    SELECT a.uscc, j.code AS adjustment, j.label, j.value, 'applied' AS status, NULL AS reason,
           a.occurred_date AS event_date, a.department AS source_department, 'accidents' AS source_dataset,
           a.record_id AS source_record_id, a.accident_no AS decision_no_or_accident_no
    FROM fl_accidents a JOIN pf_adjustments j ON a.grade_level BETWEEN j.min_grade_level AND j.max_grade_level
    WHERE j.skip_reason IS NULL
    UNION ALL
    SELECT u.uscc, j.code, j.label, j.value, 'applied', NULL, NULL, NULL, 'accidents', NULL, NULL
    FROM pf_units u CROSS JOIN pf_adjustments j
    ANTI JOIN fl_accidents a ON a.uscc = u.uscc
    WHERE j.code = 'NO_ACCIDENT' AND j.skip_reason IS NULL
    UNION ALL
    SELECT u.uscc, j.code, j.label, NULL, 'skipped', j.skip_reason, NULL, NULL, NULL, NULL, NULL
    FROM pf_units u CROSS JOIN pf_adjustments j
    WHERE j.skip_reason IS NOT NULL
), experience AS (
    SELECT uscc, 'LOSS', grade || '事故损失（死亡' || deaths || '人，重伤' || serious_injuries || '人，直接经济损失'
                         || direct_loss_wan || '万元）',
           loss, 'applied', NULL, occurred_date, department, 'accidents', record_id, accident_no
    FROM pf_losses
)
SELECT f.* FROM floating f, pf_cfg c WHERE c.model = 'floating'
UNION ALL
SELECT e.* FROM experience e, pf_cfg c WHERE c.model = 'experience'
UNION ALL
SELECT * FROM listed_row;

CREATE OR REPLACE TABLE rules.premium_factors AS
WITH applied AS (  -- floating: per unit and adjustment, how often it applied and its total
    SELECT uscc, adjustment, count(*) AS n, sum(value) AS total
    FROM rules.premium_factor_components WHERE status = 'applied' AND adjustment <> 'LOSS'
    GROUP BY uscc, adjustment
), other AS (  -- NO_ACCIDENT applies to nearly every unit: kept apart, the rest concerns few units
    SELECT uscc, list({k: adjustment, v: {n: n, total: total}}) AS entries,
           array_to_string(list_sort(list(adjustment || ':' || n || ':' || coalesce(CAST(total AS VARCHAR), ''))), ',') AS pattern,
           sum(total) AS total, sum(total) FILTER (WHERE adjustment = 'LISTED') AS listed_total
    FROM applied WHERE adjustment <> 'NO_ACCIDENT'
    GROUP BY uscc
), adj AS (
    SELECT u.uscc, o.entries, coalesce(o.listed_total, 0) AS listed_total,
           coalesce(o.pattern, '') || CASE WHEN na.uscc IS NULL THEN '' ELSE '|NO_ACCIDENT' END AS pattern,
           coalesce(o.total, 0) + coalesce(na.total, 0) AS adjustments_sum
    FROM pf_units u
    LEFT JOIN other o ON o.uscc = u.uscc
    LEFT JOIN (SELECT uscc, total FROM applied WHERE adjustment = 'NO_ACCIDENT') na ON na.uscc = u.uscc
), patterns AS (  -- the worksheet's adjustment list, built once per distinct pattern of applied adjustments
    SELECT p.pattern, list_transform(k.items, lambda j: {
               code: j.code, label: j.label, value: j.value, basis: j.basis,
               count: coalesce(p.m[j.code].n, 0), total: coalesce(p.m[j.code].total, 0),
               status: CASE WHEN j.skip_reason IS NOT NULL THEN 'skipped'
                            WHEN coalesce(p.m[j.code].n, 0) > 0 THEN 'applied' ELSE 'not_applicable' END,
               reason: j.skip_reason}) AS adjustments
    FROM (SELECT a.pattern,
                 map_from_entries(coalesce(any_value(a.entries), [])
                     || CASE WHEN a.pattern LIKE '%|NO_ACCIDENT'
                             THEN [{k: 'NO_ACCIDENT', v: {n: 1::BIGINT, total: CAST(any_value(na.value) AS DECIMAL(38, 4))}}]
                             ELSE [] END) AS m
          FROM adj a LEFT JOIN pf_adjustments na ON na.code = 'NO_ACCIDENT'
          GROUP BY a.pattern) p
    CROSS JOIN (SELECT list({code: code, label: label, value: value, basis: basis, skip_reason: skip_reason}
                            ORDER BY ord) AS items
                FROM pf_adjustments) k
), losses AS (
    SELECT uscc, count(*) AS accidents, sum(deaths) AS deaths, sum(serious_injuries) AS serious_injuries,
           sum(direct_loss_wan) AS direct_loss_wan, sum(loss) AS actual, sum(primary_loss) AS actual_primary,
           list({accident_no: accident_no, occurred_date: occurred_date, grade: grade, deaths: deaths,
                 serious_injuries: serious_injuries, direct_loss_wan: direct_loss_wan, loss: loss,
                 primary_loss: primary_loss} ORDER BY occurred_date, accident_no) AS loss_items
    FROM pf_losses GROUP BY uscc
), expected AS (
    SELECT u.uscc, u.industry, coalesce(u.employees, 0) AS employees,
           coalesce(CAST(r.rate_wan AS DECIMAL(18, 6)), c.default_rate_wan) AS base_rate_wan,
           CAST(round(coalesce(CAST(r.rate_wan AS DECIMAL(18, 6)), c.default_rate_wan) * coalesce(u.employees, 0)
                      * c.ex_years, 4) AS DECIMAL(18, 4)) AS e
    FROM pf_units u CROSS JOIN pf_cfg c
    LEFT JOIN policy_premium_industry_base_rates r ON r.industry = u.industry
), experience AS (
    SELECT x.*, coalesce(l.accidents, 0) AS accidents, coalesce(l.deaths, 0) AS deaths,
           coalesce(l.serious_injuries, 0) AS serious_injuries, coalesce(l.direct_loss_wan, 0) AS direct_loss_wan,
           l.loss_items, CAST(coalesce(l.actual, 0) AS DECIMAL(18, 4)) AS a,
           CAST(coalesce(l.actual_primary, 0) AS DECIMAL(18, 4)) AS ap,
           CAST(coalesce(l.actual, 0) - coalesce(l.actual_primary, 0) AS DECIMAL(18, 4)) AS ae,
           CAST(round(x.e * c.primary_ratio, 4) AS DECIMAL(18, 4)) AS ep,
           CAST(x.e - round(x.e * c.primary_ratio, 4) AS DECIMAL(18, 4)) AS ee,
           CAST(round(least(c.weight_max, CASE WHEN x.e + c.weight_k_wan > 0
                                               THEN x.e / (x.e + c.weight_k_wan) ELSE 0 END), 4) AS DECIMAL(18, 4)) AS w,
           CAST(round(c.ballast_wan + c.ballast_per_expected * x.e, 4) AS DECIMAL(18, 4)) AS b
    FROM expected x CROSS JOIN pf_cfg c LEFT JOIN losses l ON l.uscc = x.uscc
), modded AS (
    SELECT *, CAST(round(coalesce((ap + w * ae + (1 - w) * ee + b) / nullif(e + b, 0), 1), 4) AS DECIMAL(10, 4)) AS mod
    FROM experience
), computed AS (
    SELECT u.uscc, u.name, u.mandatory, c.model, c.cap_low, c.cap_high, c.listed_rule, c.as_of, c.valid_to,
           c.fl_after, c.ex_after, c.ex_years, c.policy_version,
           l.uscc IS NOT NULL AS listed, l.e.entry_id AS listed_entry_id,
           ad.adjustments_sum, ad.listed_total,
           pt.adjustments,
           x.*  EXCLUDE (uscc),
           CAST(CASE WHEN c.model = 'experience'
                     THEN x.mod + ad.listed_total
                     ELSE 1 + ad.adjustments_sum END AS DECIMAL(10, 4)) AS uncapped,
    FROM pf_units u CROSS JOIN pf_cfg c
    JOIN modded x ON x.uscc = u.uscc
    LEFT JOIN pf_listed l ON l.uscc = u.uscc AND 'LISTED' IN (SELECT code FROM pf_adjustments WHERE skip_reason IS NULL)
    JOIN adj ad ON ad.uscc = u.uscc
    JOIN patterns pt ON pt.pattern = ad.pattern
)
SELECT uscc, name, mandatory, model,
       CAST(CASE WHEN listed AND listed_rule = 'top_of_range' THEN cap_high
                 ELSE greatest(cap_low, least(cap_high, uncapped)) END AS DECIMAL(10, 4)) AS factor,
       uncapped AS uncapped_factor, cap_low, cap_high, listed,
       as_of AS valid_from, valid_to,
       {model: model, cap_low: cap_low, cap_high: cap_high,
        listed: listed, listed_entry_id: listed_entry_id, listed_rule: listed_rule,
        floating: CASE WHEN model = 'floating' THEN {
            window_start: CAST(fl_after + 1 AS DATE), window_end: as_of,
            adjustments: adjustments,
            adjustments_sum: adjustments_sum} END,
        experience: CASE WHEN model = 'experience' THEN {
            window_start: CAST(ex_after + 1 AS DATE), window_end: as_of,
            industry: industry, employees: employees, base_rate_wan: base_rate_wan, years: ex_years,
            expected_losses: e, expected_primary: ep, expected_excess: ee,
            accidents: accidents, deaths: deaths, serious_injuries: serious_injuries,
            direct_loss_wan: direct_loss_wan, losses: coalesce(loss_items, []), actual_losses: a, actual_primary: ap, actual_excess: ae,
            weight: w, ballast: b, mod: mod,
            listed_surcharge: listed_total} END} AS worksheet,
       policy_version, as_of
FROM computed;
