-- Listing triggers: one row per (ground, subject, decision, version), each under its list regime
-- (aq11 = 应急管理部令第11号 for 应急 departments inside its scope; industry for the others: below).
--
-- A listing always rests on an administrative penalty decision; the department that made it is
-- the deciding authority (谁处罚、谁决定、谁负责). Triggers are evaluated on every version of a
-- decision (subjects.penalty_versions): an entry that an earlier version supported and the version
-- in force no longer does turns `revoked` (rules.md §3) instead of vanishing. Decisions made after
-- params.as_of do not exist yet for the question asked.
--
-- Who is listed (rules.md §3; department-feeds.md §4):
--   A1 重大/特别重大 liability accident ........ the accident's unit + principal, and every other unit
--                                                and person penalised for it (their own penalties;
--                                                no principal of theirs through A1)
--   A2 2+ 较大 liability accidents in 12 months  unit + principal (triggered by the later one's penalty)
--   A3 accident fine under Art. 114 ¶2 ......... unit + principal (its accident, where known, a
--                                                liability accident)
--   A4 瞒报/谎报 .............................. unit; persons by their own penalties
--   A5 principal absconded ..................... principal only; a person by his own penalty
--   B1 unlicensed operation .................... unit + principal
--   B2 agency fraud ............................ agency; its staff by their own penalties
--   B3 refused execution (policy), or 拒不执行 .. unit + principal
--   B4 other, 情节 as policy sets (特别严重) .... unit + principal
CREATE OR REPLACE TABLE rules.ground_rules AS
SELECT * FROM (VALUES
    ('A1', 'ACCIDENT_LIABILITY',   true,  true,  true),
    ('A2', 'ACCIDENT_LIABILITY',   true,  true,  false),
    ('A3', 'ACCIDENT_LIABILITY',   true,  true,  false),
    ('A4', 'ACCIDENT_CONCEALED',   true,  false, true),
    ('A5', 'PRINCIPAL_ABSCONDED',  false, true,  true),
    ('B1', 'UNLICENSED_OPERATION', true,  true,  false),
    ('B2', 'AGENCY_FRAUD',         true,  false, true),
    ('B3', 'REFUSED_EXECUTION',    true,  true,  false),
    ('B4', 'OTHER',                true,  true,  false)
) t(ground, violation_code, lists_unit, lists_principal, lists_person_penalised);

-- accidents of the same unit that make a 较大 accident the second within 12 calendar months
CREATE OR REPLACE TABLE rules.a2_accidents AS
SELECT DISTINCT later.accident_no
FROM rules.accidents later
JOIN rules.accidents earlier
  ON earlier.unit_uscc = later.unit_uscc AND earlier.accident_no <> later.accident_no
 AND earlier.grade_level = 2 AND earlier.liability = '责任事故'
 AND earlier.occurred_date <= later.occurred_date
 AND earlier.occurred_date >= CAST(later.occurred_date - INTERVAL 12 MONTH AS DATE)
WHERE later.grade_level = 2 AND later.liability = '责任事故'
  AND later.occurred_date <= (SELECT as_of FROM params);

-- The decisions (all versions) whose violation could list anybody under an enabled ground, then
-- with their accident. Two tables of their own: with exact row counts the planner builds its hash
-- tables on the small sides (as one statement it guessed a few thousand candidates where there are
-- millions, built on the wide penalty rows and ran out of memory at 20 M penalty versions).
--
-- Day 0 of an entry is its triggering decision's date, except for B3 from 执行状态 (below).
--
-- B3 also arises without a new penalty (rules.md §3; department-feeds.md §4): a penalty version whose
-- AQ_ZXZT says 拒不执行, or 强制执行 after a version that said 拒不执行 (refused, then enforced: the
-- refusal stands). Day 0 is the Asia/Shanghai date of the first version saying 拒不执行. A later
-- version saying 未执行 or 已执行 is a correction: it no longer qualifies, and the entry turns
-- `revoked`. A REFUSED_EXECUTION penalty that also says 拒不执行 is one entry (same decision, ground
-- and subject): the penalty itself grounds it, dated by its decision, so this branch leaves it out
-- (a predicate, not a window over the wide candidate rows).
CREATE OR REPLACE TEMP TABLE refusals AS
SELECT department, record_id, min(updated_at) AS refused_at,
       CAST(timezone('Asia/Shanghai', min(updated_at)) AS DATE) AS refused_on
FROM subjects.penalty_versions WHERE execution_status = '拒不执行'
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE trigger_candidates AS
    SELECT g.ground, g.lists_unit, g.lists_principal, g.lists_person_penalised, pg.severity AS ground_severity,
           'penalty' AS trigger_source, p.decision_date AS day0, p.*
    FROM subjects.penalty_versions p
    JOIN rules.ground_rules g ON g.violation_code = p.violation_code
    JOIN grounds pg ON pg.ground = g.ground AND pg.enabled
    WHERE p.decision_date <= (SELECT as_of FROM params) AND p.subject_type IS NOT NULL
      -- the severity tests of trigger_qualified, here already: of ~90 % of the versions (B4 其他 of
      -- any 情节) only the few that can qualify are copied with all their columns
      AND CASE g.ground WHEN 'A3' THEN p.severity = '特别严重'
                        WHEN 'B4' THEN p.severity = coalesce(pg.severity, '特别严重') ELSE true END
    UNION ALL BY NAME
    SELECT g.ground, g.lists_unit, g.lists_principal, g.lists_person_penalised, pg.severity AS ground_severity,
           'execution_status' AS trigger_source, r.refused_on AS day0, p.*
    FROM subjects.penalty_versions p
    JOIN refusals r ON r.department = p.department AND r.record_id = p.record_id
    JOIN rules.ground_rules g ON g.ground = 'B3'
    JOIN grounds pg ON pg.ground = g.ground AND pg.enabled
    WHERE p.execution_status IN ('拒不执行', '强制执行') AND p.updated_at >= r.refused_at
      AND p.violation_code IS DISTINCT FROM 'REFUSED_EXECUTION'
      AND r.refused_on <= (SELECT as_of FROM params)
      AND p.decision_date <= (SELECT as_of FROM params) AND p.subject_type IS NOT NULL;

-- (accident version, ground) for A1, A2 and A3: every version that met the ground, and whether the
-- accident still meets it now (the version in force, and for A2 the pair still there). A penalty
-- version matched to an accident that was revoked or regraded since no longer qualifies: its entry
-- turns `revoked`, dated by the accident's change (accident_changed_at). A3's ground is the fine
-- under 安全生产法 Art. 114 ¶2, which punishes the unit responsible for an accident of any grade: the
-- accident qualifies while it is a liability accident (责任事故), so its revocation, or a correction
-- to 非责任事故 or 调查中, is what takes an A3 entry below its ground.
CREATE OR REPLACE TEMP TABLE accident_ground_versions AS
WITH changed AS (   -- the record's last change: a correction, a regrading or a revocation (which may
                    -- carry only the envelope, so by record, not by 事故编号)
    SELECT department, record_id, max(updated_at) AS accident_changed_at FROM k_accidents GROUP BY ALL
), av AS (
    SELECT v.*, c.accident_no IS NOT NULL AS version_in_force, ch.accident_changed_at
    FROM rules.accident_versions v
    JOIN changed ch ON ch.department = v.department AND ch.record_id = v.record_id
    LEFT JOIN rules.accidents c
      ON c.department = v.department AND c.record_id = v.record_id AND c.updated_at = v.updated_at
    WHERE v.accident_no IN (SELECT accident_no FROM trigger_candidates WHERE ground IN ('A1', 'A2', 'A3'))
)
SELECT 'A1' AS ground, av.*, version_in_force AS qualifies_now
FROM av WHERE liability = '责任事故' AND grade_level >= 3
UNION ALL BY NAME
SELECT 'A3' AS ground, av.*, version_in_force AS qualifies_now
FROM av WHERE liability = '责任事故'
UNION ALL BY NAME
-- A2 rests on two accidents: a change to the earlier one dates the revocation as well
SELECT 'A2' AS ground, later.* EXCLUDE (accident_changed_at),
       later.version_in_force AND later.accident_no IN (SELECT accident_no FROM rules.a2_accidents) AS qualifies_now,
       greatest(later.accident_changed_at, pair.earlier_changed_at) AS accident_changed_at
FROM av later
JOIN (SELECT l.department, l.record_id, l.updated_at, max(ech.accident_changed_at) AS earlier_changed_at
      FROM av l
      JOIN rules.accident_versions earlier
        ON earlier.unit_uscc = l.unit_uscc AND earlier.accident_no <> l.accident_no
       AND earlier.grade_level = 2 AND earlier.liability = '责任事故'
       AND earlier.occurred_date <= l.occurred_date
       AND earlier.occurred_date >= CAST(l.occurred_date - INTERVAL 12 MONTH AS DATE)
      JOIN changed ech ON ech.department = earlier.department AND ech.record_id = earlier.record_id
      GROUP BY ALL) pair
  ON pair.department = later.department AND pair.record_id = later.record_id AND pair.updated_at = later.updated_at
WHERE later.liability = '责任事故' AND later.grade_level = 2 AND later.occurred_date <= (SELECT as_of FROM params);

-- one row per (ground, accident): the version in force where it qualifies, else the latest that did
-- (so the penalty rows join 1:1, without a window over them)
CREATE OR REPLACE TEMP TABLE accident_grounds AS
SELECT * FROM accident_ground_versions
QUALIFY row_number() OVER (PARTITION BY ground, accident_no ORDER BY qualifies_now DESC, updated_at DESC) = 1;

CREATE OR REPLACE TEMP TABLE trigger_qualified AS
SELECT c.* EXCLUDE (ground_severity, is_latest),
       c.is_latest AND coalesce(g.qualifies_now, true) AS is_latest, g.accident_changed_at,
       coalesce(g.grade, a.grade) AS accident_grade, coalesce(g.grade_level, a.grade_level) AS grade_level,
       coalesce(g.liability, a.liability) AS accident_liability,
       coalesce(g.principal_id_no, a.principal_id_no) AS accident_principal_id,
       coalesce(g.principal_name, a.principal_name) AS accident_principal,
       coalesce(g.occurred_at, a.occurred_at) AS accident_occurred_at,
       coalesce(g.unit_uscc, a.unit_uscc) AS accident_unit
FROM trigger_candidates c
LEFT JOIN accident_grounds g ON g.ground = c.ground AND g.accident_no = c.accident_no
LEFT JOIN rules.accidents a ON a.accident_no = c.accident_no
WHERE CASE c.ground
    WHEN 'A1' THEN g.accident_no IS NOT NULL
    WHEN 'A2' THEN g.accident_no IS NOT NULL
    -- the penalty says Art. 114 ¶2; an accident we know of must be (or have been) a liability accident
    WHEN 'A3' THEN c.severity = '特别严重' AND (g.accident_no IS NOT NULL OR NOT EXISTS (
                       SELECT 1 FROM rules.accident_versions v WHERE v.accident_no = c.accident_no))
    WHEN 'B4' THEN c.severity = coalesce(c.ground_severity, '特别严重')
    ELSE true END;

-- The list regime of each trigger (rules.md §3; contracts/policy/default/regimes.yaml): the kind of
-- the department whose report of the decision is kept (`kind:` in the sources file, recorded in
-- rules.department_settings; a department without one counts as `other`) chooses the regime; its
-- basis is the regime's, or for `industry` the deciding department kind's own, never 11号令.
CREATE OR REPLACE TEMP TABLE regime_by_kind AS
SELECT r.kind, r.regime,
       coalesce(nullif(CAST(rk.basis AS VARCHAR), ''), CAST(r.basis AS VARCHAR)) AS regime_basis,
       coalesce(TRY_CAST(r.scoped AS BOOLEAN), false) AS regime_scoped,
       string_split(replace(coalesce(CAST(r.grounds AS VARCHAR), '*'), ' ', ''), ',') AS regime_grounds
FROM (SELECT *, unnest(string_split(replace(CAST(kinds AS VARCHAR), ' ', ''), ',')) AS kind FROM policy_regimes) r
LEFT JOIN policy_regime_kinds rk ON rk.regime = r.regime AND rk.kind = r.kind;

-- A scoped regime (aq11, 11号令 第二条) lists a unit only inside its scope: its GB/T 4754 code in the
-- registry version in force on the penalty's decision date matches an `include` prefix at least as
-- long as any `exclude` prefix it matches; or its 高危行业 (QY_GWHY) names an Art. 2 field; or it is a
-- 安全评价/认证/检测/检验 agency (a unit of the ratings dataset, or penalised under B2). A unit of
-- unknown industry (no registry version then, or no code) is in scope, and flagged.
CREATE OR REPLACE TEMP TABLE registry_industry AS
SELECT uscc, timezone('Asia/Shanghai', updated_at) AS local_at,
       nullif(upper(replace(industry_code, ' ', '')), '') AS industry_code, high_risk_industry
FROM k_enterprises
WHERE op = 'upsert' AND uscc IN (SELECT subject_id FROM trigger_qualified WHERE subject_type = 'unit');

CREATE OR REPLACE TEMP TABLE unit_scope AS
WITH u AS (
    SELECT DISTINCT q.subject_id, q.decision_date, ri.industry_code, ri.high_risk_industry
    FROM trigger_qualified q
    ASOF LEFT JOIN registry_industry ri ON ri.uscc = q.subject_id AND CAST(q.decision_date + 1 AS TIMESTAMP) > ri.local_at
    WHERE q.subject_type = 'unit'
), prefixes AS (
    SELECT regime, effect, upper(CAST(prefix AS VARCHAR)) AS prefix, field FROM policy_regime_scope
), matched AS (   -- a code given without its section letter (3311) matches the prefix without it (33)
    SELECT u.subject_id, u.decision_date, p.regime,
           max(length(p.prefix)) FILTER (WHERE p.effect = 'include') AS include_len,
           max(length(p.prefix)) FILTER (WHERE p.effect = 'exclude') AS exclude_len,
           arg_max(p.field, length(p.prefix)) FILTER (WHERE p.effect = 'include') AS field
    FROM u JOIN prefixes p
      ON starts_with(u.industry_code, p.prefix)
      OR (regexp_matches(u.industry_code, '^[0-9]') AND starts_with(u.industry_code, substr(p.prefix, 2)))
    GROUP BY ALL
), agencies AS (SELECT DISTINCT agency_uscc FROM k_intermediary_ratings WHERE op = 'upsert')
SELECT u.subject_id, u.decision_date, r.regime, u.industry_code, u.high_risk_industry,
       coalesce(m.field, g.field) AS scope_field,
       u.industry_code IS NULL AND g.field IS NULL AS industry_unknown,
       u.industry_code IS NULL OR g.field IS NOT NULL OR a.agency_uscc IS NOT NULL
           OR coalesce(m.include_len >= coalesce(m.exclude_len, 0), false) AS in_scope
FROM u
CROSS JOIN (SELECT DISTINCT regime FROM policy_regime_scope) r
LEFT JOIN matched m ON m.subject_id = u.subject_id AND m.decision_date = u.decision_date AND m.regime = r.regime
LEFT JOIN policy_regime_scope_gwhy g ON g.regime = r.regime AND g.gwhy = u.high_risk_industry
LEFT JOIN agencies a ON a.agency_uscc = u.subject_id;

CREATE OR REPLACE TEMP TABLE trigger_regimes AS
SELECT q.*, rk.regime, rk.regime_basis, rk.regime_scoped, coalesce(ds.kind, 'other') AS department_kind,
       s.industry_code AS scope_industry_code, s.scope_field, coalesce(s.industry_unknown, false) AS industry_unknown,
       NOT rk.regime_scoped OR q.subject_type <> 'unit' OR q.ground = 'B2' OR coalesce(s.in_scope, true) AS in_scope
FROM trigger_qualified q
LEFT JOIN rules.department_settings ds ON ds.department = q.department
JOIN regime_by_kind rk ON rk.kind = coalesce(ds.kind, 'other')
LEFT JOIN unit_scope s ON s.subject_id = q.subject_id AND s.decision_date = q.decision_date AND s.regime = rk.regime
WHERE list_contains(rk.regime_grounds, '*') OR list_contains(rk.regime_grounds, q.ground);

-- What a scoped regime left out (an 应急 penalty on a unit outside 11号令 第二条: no entry, no candidate;
-- the penalty still counts for publicity, credit and premium) and what it took in without knowing the
-- industry: reported, never silent.
CREATE OR REPLACE TABLE rules.listing_scope_report AS
SELECT DISTINCT CASE WHEN in_scope THEN 'industry_unknown' ELSE 'out_of_scope' END AS outcome,
       regime, ground, subject_id AS unit_uscc, scope_industry_code AS industry_code, authority_code, decision_no,
       decision_date, department, record_id,
       CASE WHEN in_scope THEN 'LISTING-SCOPE-INDUSTRY-UNKNOWN' ELSE 'LISTING-OUT-OF-SCOPE' END AS rule_id,
       CASE WHEN in_scope
            THEN '处罚决定 ' || decision_no || ' 构成 ' || ground || ' 列入情形；决定日的监管对象库未载明该单位行业，按 '
                 || regime || ' 范围内处理，请核实。'
            ELSE '处罚决定 ' || decision_no || ' 构成 ' || ground || ' 列入情形，但单位行业 ' || coalesce(scope_industry_code, '')
                 || ' 不在 ' || regime || ' 适用范围（应急管理部令第11号第二条），不列入；该处罚仍计入公示、信用和费率。' END AS message_zh,
       CASE WHEN in_scope
            THEN 'decision ' || decision_no || ' grounds ' || ground || '; the registry names no industry for the unit on '
                 || 'the decision date: treated as inside ' || regime || '''s scope, please verify.'
            ELSE 'decision ' || decision_no || ' grounds ' || ground || ', but the unit''s industry '
                 || coalesce(scope_industry_code, '') || ' is outside ' || regime || '''s scope (11号令 Art. 2): not '
                 || 'listed; the penalty still counts for publicity, credit and premium.' END AS message_en
FROM trigger_regimes
WHERE is_latest AND subject_type = 'unit' AND regime_scoped AND (NOT in_scope OR industry_unknown)
ORDER BY ALL;

-- a1_other_unit: a unit penalised for an A1 accident that is not the accident's own unit (SG_DWDM):
-- listed under its own penalty's regime, without its principal (rules.md §3). An accident naming
-- no unit leaves every penalised unit its own.
CREATE OR REPLACE TEMP TABLE trigger_matched AS
SELECT * EXCLUDE (in_scope, regime_scoped, industry_unknown),
       coalesce(ground = 'A1' AND subject_type = 'unit' AND subject_id <> accident_unit, false) AS a1_other_unit
FROM trigger_regimes WHERE in_scope;

-- The unit's principal at the time of the violation (rules.md §3; department-feeds.md §4): named on
-- the penalty, else on its accident, else the registry version with the latest updated_at on or
-- before the accident's occurrence, else on or before day 0 — never the registry as it stands now,
-- so a successor is not listed for a predecessor's act. None found: reported, no principal listed.
CREATE OR REPLACE TEMP TABLE registry_principals AS
SELECT uscc, timezone('Asia/Shanghai', updated_at) AS local_at, principal_id_no, principal_name
FROM k_enterprises
WHERE op = 'upsert' AND principal_id_no IS NOT NULL
  AND uscc IN (SELECT subject_id FROM trigger_matched WHERE subject_type = 'unit' AND lists_principal);

CREATE OR REPLACE TEMP TABLE trigger_principals AS
SELECT m.*,
       CASE WHEN m.principal_id_no IS NOT NULL THEN 'penalty'
            WHEN m.accident_principal_id IS NOT NULL THEN 'accident'
            WHEN ra.principal_id_no IS NOT NULL THEN 'registry at the accident'
            WHEN rd.principal_id_no IS NOT NULL THEN 'registry at the decision' END AS principal_source,
       coalesce(m.principal_id_no, m.accident_principal_id, ra.principal_id_no, rd.principal_id_no) AS at_time_id_no,
       CASE WHEN m.principal_id_no IS NOT NULL THEN m.principal_name
            WHEN m.accident_principal_id IS NOT NULL THEN m.accident_principal
            WHEN ra.principal_id_no IS NOT NULL THEN ra.principal_name ELSE rd.principal_name END AS at_time_name
FROM trigger_matched m
ASOF LEFT JOIN registry_principals ra ON ra.uscc = m.subject_id AND m.accident_occurred_at >= ra.local_at
ASOF LEFT JOIN registry_principals rd ON rd.uscc = m.subject_id AND CAST(m.day0 + 1 AS TIMESTAMP) > rd.local_at
WHERE m.subject_type = 'unit' AND m.lists_principal AND NOT m.a1_other_unit;

CREATE OR REPLACE TABLE rules.principal_gaps AS
SELECT DISTINCT ground, subject_id AS unit_uscc, authority_code, decision_no, decision_date, department, record_id,
       'LISTING-PRINCIPAL-UNKNOWN' AS rule_id,
       '处罚决定 ' || decision_no || ' 构成 ' || ground || ' 列入情形，但处罚、事故及当时的监管对象库版本均未载明主要负责人，'
           || '未列入主要负责人。' AS message_zh,
       'decision ' || decision_no || ' grounds ' || ground || ', but neither the penalty, its accident nor a registry '
           || 'version of the time names the principal: no principal listed.' AS message_en
FROM trigger_principals WHERE at_time_id_no IS NULL AND is_latest
ORDER BY ALL;

CREATE OR REPLACE TABLE rules.trigger_versions AS
-- the penalised unit (for A1 also another unit penalised for the same accident)
SELECT ground, 'unit' AS subject_type, subject_id, subject_id AS subject_code_full, subject_name AS name,
       CASE WHEN a1_other_unit THEN 'other penalised unit' ELSE 'penalised unit' END AS role,
       * EXCLUDE (ground, subject_type, subject_id, subject_code, lists_unit, lists_principal, lists_person_penalised,
                  a1_other_unit)
FROM trigger_matched WHERE subject_type = 'unit' AND lists_unit
UNION ALL BY NAME
-- the unit's principal at the time
SELECT ground, 'person' AS subject_type,
       'P' || left(sha256((SELECT person_salt FROM params) || at_time_id_no), 16) AS subject_id,
       at_time_id_no AS subject_code_full, at_time_name AS name, 'principal' AS role,
       * EXCLUDE (ground, subject_type, subject_id, subject_code, lists_unit, lists_principal, lists_person_penalised,
                  at_time_id_no, at_time_name, a1_other_unit)
FROM trigger_principals WHERE at_time_id_no IS NOT NULL
UNION ALL BY NAME
-- a person penalised himself (A1 the accident's other responsible persons, A4 responsible persons,
-- A5 the absconded principal, B2 agency staff). A1 lists "every other person": the accident unit's
-- principal at the time is listed as its principal (above), not a second time by his own penalty.
SELECT ground, 'person' AS subject_type, subject_id, subject_code AS subject_code_full, subject_name AS name,
       'penalised person' AS role,
       * EXCLUDE (ground, subject_type, subject_id, subject_code, lists_unit, lists_principal, lists_person_penalised,
                  a1_other_unit)
FROM trigger_matched m WHERE subject_type = 'person' AND lists_person_penalised
  AND NOT (ground = 'A1' AND EXISTS (SELECT 1 FROM trigger_principals p
                                     WHERE p.ground = 'A1' AND p.accident_no = m.accident_no
                                       AND p.at_time_id_no = m.subject_code));

DROP TABLE refusals;
DROP TABLE registry_principals;
DROP TABLE trigger_principals;
DROP TABLE accident_ground_versions;
DROP TABLE accident_grounds;
DROP TABLE trigger_candidates;
DROP TABLE trigger_matched;
DROP TABLE trigger_qualified;
DROP TABLE trigger_regimes;
DROP TABLE unit_scope;
DROP TABLE registry_industry;
