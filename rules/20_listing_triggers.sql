-- Listing triggers (应急管理部令第11号): one row per (unit, ground, triggering decision).
-- A listing always rests on an administrative penalty decision; the department that made it is
-- the deciding authority (谁处罚、谁决定、谁负责). Decisions come from subjects.penalties: one per
-- decision, resolved to a subject, revoked ones included (their entries turn `revoked`).
CREATE OR REPLACE TABLE rules.unit_triggers AS
-- A1: a 重大 or 特别重大 liability accident
SELECT 'A1' AS ground, p.*, a.grade AS accident_grade, a.accident_no AS trigger_accident
FROM subjects.penalties p
JOIN rules.accidents a ON a.accident_no = p.accident_no
WHERE p.violation_code = 'ACCIDENT_LIABILITY' AND a.liability = '责任事故' AND a.grade_level >= 3
  AND p.subject_type = 'unit'
UNION ALL
-- B1: operating without the required safety licence, or while it was suspended or revoked
SELECT 'B1' AS ground, p.*, NULL AS accident_grade, NULL AS trigger_accident
FROM subjects.penalties p
WHERE p.violation_code = 'UNLICENSED_OPERATION' AND p.subject_type = 'unit';
