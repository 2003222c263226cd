-- Penalty decisions as the rules see them (only what had landed by params.known_at).
--
-- 1. Every upsert version of every record is kept (subjects.penalty_versions), so a listing that
--    an earlier version triggered and a correction no longer supports turns `revoked` instead of
--    disappearing; `is_latest` marks the version in force, `revoked` a record withdrawn since.
-- 2. The same decision (处罚机关代码 + 决定书文号) reported by several departments is kept once:
--    the deciding department's own report wins (数据来源 = 处罚机关), else the earliest sent.
--    The others are reported in subjects.duplicate_decisions.
-- 3. Each version is resolved to a stable subject id: a unit by its USCC (directly, or through the
--    registry from an old registration number, organisation code or current/former name); a person
--    by a keyed hash of the ID number. Unresolved ones are reported, never silently dropped.

-- Per record: its latest version (a revoke wins a tie with an upsert) and its latest upsert. Staging
-- keeps one row per (record, updated_at, op), so the maxima name single rows: a GROUP BY on the keys,
-- not a window sorting every version (issue 10 §3).
CREATE OR REPLACE TEMP TABLE penalty_record_times AS
SELECT department, record_id, max(updated_at) AS latest_at,
       coalesce(max(updated_at) FILTER (WHERE op = 'revoke') = max(updated_at), false) AS revoked,
       max(updated_at) FILTER (WHERE op = 'upsert') AS upsert_at
FROM k_penalties GROUP BY ALL;

CREATE OR REPLACE TABLE subjects.penalty_records AS
SELECT department, record_id, latest_at, revoked FROM penalty_record_times;

CREATE OR REPLACE TABLE subjects.penalty_decisions AS
WITH d AS MATERIALIZED (   -- the latest upsert of each record
    SELECT v.department, v.record_id, v.authority_code, v.decision_no, v.source_unit_code, v.updated_at,
           t.revoked, t.latest_at
    FROM k_penalties v
    JOIN penalty_record_times t
      ON t.department = v.department AND t.record_id = v.record_id AND t.upsert_at = v.updated_at
    WHERE v.op = 'upsert'
), dup AS (   -- decisions reported more than once (rare): only these are ranked, not every decision
    SELECT authority_code, decision_no, count(*) AS reports FROM d GROUP BY ALL HAVING count(*) > 1
), ranked AS (
    SELECT d.department, d.record_id, dup.reports,
           row_number() OVER (PARTITION BY d.authority_code, d.decision_no
                              ORDER BY (d.source_unit_code = d.authority_code) DESC, d.updated_at, d.department,
                                       d.record_id) AS report_rank
    FROM d JOIN dup ON dup.authority_code IS NOT DISTINCT FROM d.authority_code
                   AND dup.decision_no IS NOT DISTINCT FROM d.decision_no
)
SELECT d.*, coalesce(rk.report_rank, 1) AS report_rank, coalesce(rk.reports, 1) AS reports
FROM d LEFT JOIN ranked rk USING (department, record_id);

DROP TABLE penalty_record_times;

CREATE OR REPLACE TABLE subjects.duplicate_decisions AS
SELECT authority_code, decision_no, department, record_id, report_rank, reports
FROM subjects.penalty_decisions WHERE reports > 1
ORDER BY authority_code, decision_no, report_rank;

-- Every upsert version of the decision's retained report; staging already keeps one row per
-- (record, updated_at, op) — the first landed copy — so there is nothing to de-duplicate here, and
-- the version in force is the one penalty_decisions found latest.
--
-- Stored narrow (issue 10 §3): the key of each version with its resolution and flags; the wide
-- columns stay in staged.penalties and subjects.penalty_versions joins them back (a view). Writing
-- the 50 columns of every version again cost most of this file (compressing text columns
-- that are already stored, compressed, in staged.penalties).
CREATE OR REPLACE TABLE subjects.penalty_resolution AS
WITH d AS (
    SELECT v.department, v.record_id, v.updated_at, v.uscc, v.reg_no, v.org_code, v.subject_name, v.person_id_no,
           pd.revoked, CASE WHEN pd.revoked THEN pd.latest_at END AS revoked_at,
           v.updated_at = pd.updated_at AS is_latest,
           (coalesce(v.penalised_party, '') = '个人' OR coalesce(v.subject_category, '') = '自然人') AS on_person
    FROM k_penalties v
    JOIN subjects.penalty_decisions pd
      ON pd.department = v.department AND pd.record_id = v.record_id AND pd.report_rank = 1
    WHERE v.op = 'upsert'),
resolved AS (
    SELECT p.department, p.record_id, p.updated_at, p.revoked, p.revoked_at, p.is_latest, p.on_person,
        CASE
            WHEN on_person AND sc_id_ok(p.person_id_no) THEN 'id_number'
            WHEN on_person AND p.person_id_no IS NOT NULL THEN 'person_document'
            WHEN NOT on_person AND p.uscc IS NOT NULL AND r_u.uscc IS NOT NULL THEN 'uscc'
            WHEN NOT on_person AND p.uscc IS NOT NULL THEN 'uscc_unregistered'
            WHEN NOT on_person AND r_reg.uscc IS NOT NULL THEN 'reg_no'
            WHEN NOT on_person AND r_org.uscc IS NOT NULL THEN 'org_code'
            WHEN NOT on_person AND n.uscc IS NOT NULL AND n.candidates = 1 THEN 'name'
        END AS resolved_by,
        CASE
            WHEN on_person AND p.person_id_no IS NOT NULL THEN p.person_id_no
            WHEN NOT on_person THEN coalesce(p.uscc, r_reg.uscc, r_org.uscc, CASE WHEN n.candidates = 1 THEN n.uscc END)
        END AS subject_code
    FROM d p
    LEFT JOIN subjects.registry r_u ON r_u.uscc = p.uscc
    LEFT JOIN (SELECT reg_no, min(uscc) AS uscc FROM subjects.registry WHERE reg_no IS NOT NULL GROUP BY 1 HAVING count(*) = 1) r_reg
           ON r_reg.reg_no = p.reg_no
    LEFT JOIN (SELECT coalesce(replace(org_code, '-', ''), substr(uscc, 9, 9)) AS org, min(uscc) AS uscc
               FROM subjects.registry GROUP BY 1 HAVING count(*) = 1) r_org
           ON r_org.org = replace(p.org_code, '-', '')
    -- the name is looked up only where it can decide (no USCC on a unit's penalty): normalising
    -- every name of 20 M decisions cost more than the rest of the resolution together
    LEFT JOIN subjects.name_index n
           ON n.name_key = CASE WHEN p.uscc IS NULL AND NOT p.on_person THEN sc_name_key(p.subject_name) END
)
SELECT *,
    CASE WHEN resolved_by IS NULL THEN NULL
         WHEN on_person THEN 'person' ELSE 'unit' END AS subject_type,
    CASE WHEN resolved_by IS NULL THEN NULL
         WHEN on_person THEN 'P' || left(sha256((SELECT person_salt FROM params) || subject_code), 16)
         ELSE subject_code END AS subject_id
FROM resolved;

-- the versions with their columns, as before: staged.penalties holds one row per (record,
-- updated_at, op), so the join finds exactly the version the resolution was made for
CREATE OR REPLACE VIEW subjects.penalty_versions AS
SELECT v.* EXCLUDE (op), r.revoked, r.revoked_at, r.is_latest, r.on_person, r.resolved_by, r.subject_code,
       r.subject_type, r.subject_id
FROM staged.penalties v
JOIN subjects.penalty_resolution r
  ON r.department = v.department AND r.record_id = v.record_id AND r.updated_at = v.updated_at
WHERE v.op = 'upsert';

-- the version in force of each decision: a view, not a copy (20 M wide rows took a minute to write)
CREATE OR REPLACE VIEW subjects.penalties AS
SELECT * FROM subjects.penalty_versions WHERE is_latest;

CREATE OR REPLACE TABLE subjects.resolution_report AS
SELECT department, coalesce(resolved_by, 'unresolved') AS resolved_by, count(*) AS decisions
FROM subjects.penalties GROUP BY ALL ORDER BY ALL;
