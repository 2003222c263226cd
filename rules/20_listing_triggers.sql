-- Listing triggers (应急管理部令第11号): one row per (ground, subject, decision, version).
--
-- A listing always rests on an administrative penalty decision; the department that made it is
-- the deciding authority (谁处罚、谁决定、谁负责). Triggers are evaluated on every version of a
-- decision (subjects.penalty_versions): an entry that an earlier version supported and the version
-- in force no longer does turns `revoked` (rules.md §3) instead of vanishing. Decisions made after
-- params.as_of do not exist yet for the question asked.
--
-- Who is listed (rules.md §3; department-feeds.md §4):
--   A1 重大/特别重大 liability accident ........ unit + principal
--   A2 2+ 较大 liability accidents in 12 months  unit + principal (triggered by the later one's penalty)
--   A3 accident fine under Art. 114 ¶2 ......... unit + principal
--   A4 瞒报/谎报 .............................. unit; persons by their own penalties
--   A5 principal absconded ..................... principal only; a person by his own penalty
--   B1 unlicensed operation .................... unit + principal
--   B2 agency fraud ............................ agency; its staff by their own penalties
--   B3 refused execution (policy) .............. unit + principal
--   B4 other, 情节 as policy sets (特别严重) .... unit + principal
CREATE OR REPLACE TABLE rules.ground_rules AS
SELECT * FROM (VALUES
    ('A1', 'ACCIDENT_LIABILITY',   true,  true,  false),
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

CREATE OR REPLACE TABLE rules.trigger_versions AS
WITH v AS (
    SELECT p.*, a.grade AS accident_grade, a.grade_level, a.liability AS accident_liability,
           a.principal_id_no AS accident_principal_id, a.principal_name AS accident_principal
    FROM subjects.penalty_versions p
    LEFT JOIN rules.accidents a ON a.accident_no = p.accident_no
    WHERE p.decision_date <= (SELECT as_of FROM params) AND p.subject_type IS NOT NULL
), matched AS (
    SELECT g.ground, g.lists_unit, g.lists_principal, g.lists_person_penalised, v.*
    FROM v JOIN rules.ground_rules g ON g.violation_code = v.violation_code
    JOIN grounds pg ON pg.ground = g.ground AND pg.enabled
    WHERE CASE g.ground
        WHEN 'A1' THEN v.accident_liability = '责任事故' AND v.grade_level >= 3
        WHEN 'A2' THEN v.accident_liability = '责任事故' AND v.grade_level = 2
                       AND v.accident_no IN (SELECT accident_no FROM rules.a2_accidents)
        WHEN 'A3' THEN v.severity = '特别严重'
        WHEN 'B4' THEN v.severity = coalesce(pg.severity, '特别严重')
        ELSE true END
)
-- the penalised unit
SELECT ground, 'unit' AS subject_type, subject_id, subject_id AS subject_code_full, subject_name AS name,
       'penalised unit' AS role, * EXCLUDE (ground, subject_type, subject_id, subject_code, lists_unit, lists_principal, lists_person_penalised)
FROM matched WHERE subject_type = 'unit' AND lists_unit
UNION ALL BY NAME
-- the unit's principal: from the penalty, else its accident, else the registry
SELECT m.ground, 'person' AS subject_type,
       'P' || left(sha256((SELECT person_salt FROM params)
                          || coalesce(m.principal_id_no, m.accident_principal_id, r.principal_id_no)), 16) AS subject_id,
       coalesce(m.principal_id_no, m.accident_principal_id, r.principal_id_no) AS subject_code_full,
       coalesce(m.principal_name, m.accident_principal, r.principal_name) AS name,
       'principal' AS role, m.* EXCLUDE (ground, subject_type, subject_id, subject_code, lists_unit, lists_principal, lists_person_penalised)
FROM matched m LEFT JOIN subjects.registry r ON r.uscc = m.subject_id
WHERE m.subject_type = 'unit' AND m.lists_principal
  AND coalesce(m.principal_id_no, m.accident_principal_id, r.principal_id_no) IS NOT NULL
UNION ALL BY NAME
-- a person penalised himself (A4 responsible persons, A5 the absconded principal, B2 agency staff)
SELECT ground, 'person' AS subject_type, subject_id, subject_code AS subject_code_full, subject_name AS name,
       'penalised person' AS role, * EXCLUDE (ground, subject_type, subject_id, subject_code, lists_unit, lists_principal, lists_person_penalised)
FROM matched WHERE subject_type = 'person' AND lists_person_penalised;
