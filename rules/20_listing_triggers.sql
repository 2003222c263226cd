-- Listing triggers (应急管理部令第11号): one row per (subject, ground, triggering decision).
-- A listing always rests on an administrative penalty decision; the department that made it is
-- the deciding authority (谁处罚、谁决定、谁负责).
--
-- Penalties are taken in their latest version, revoked ones included: a revoked trigger keeps
-- its entry with status `revoked` rather than disappearing.
CREATE OR REPLACE TABLE rules.penalty_latest AS
SELECT * FROM staged.penalties
QUALIFY row_number() OVER (PARTITION BY department, record_id
                           ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) = 1;

-- the last upsert of each penalty carries the business fields (a revoke carries only the envelope)
CREATE OR REPLACE TABLE rules.penalties AS
SELECT u.* EXCLUDE (op), l.op = 'revoke' AS revoked, l.updated_at AS revoked_at_or_updated
FROM rules.penalty_latest l
JOIN (SELECT * FROM staged.penalties WHERE op = 'upsert'
      QUALIFY row_number() OVER (PARTITION BY department, record_id ORDER BY updated_at DESC, fetch_id DESC, seq DESC) = 1) u
  USING (department, record_id);

CREATE OR REPLACE TABLE rules.unit_triggers AS
-- A1: a 重大 or 特别重大 liability accident
SELECT 'A1' AS ground, p.*, a.grade AS accident_grade, a.accident_no AS trigger_accident
FROM rules.penalties p
JOIN rules.accidents a ON a.accident_no = p.accident_no
WHERE p.violation_code = 'ACCIDENT_LIABILITY' AND a.liability = '责任事故' AND a.grade_level >= 3
  AND coalesce(p.penalised_party, '单位') = '单位' AND p.uscc IS NOT NULL
UNION ALL
-- B1: operating without the required safety licence, or while it was suspended or revoked
SELECT 'B1' AS ground, p.*, NULL AS accident_grade, NULL AS trigger_accident
FROM rules.penalties p
WHERE p.violation_code = 'UNLICENSED_OPERATION'
  AND coalesce(p.penalised_party, '单位') = '单位' AND p.uscc IS NOT NULL;
