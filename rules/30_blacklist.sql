-- The serious-dishonesty list (严重失信主体名单) as of params.as_of.
-- Dates (Asia/Shanghai): day 0 = decision date; the listing starts on the Nth working day after it
-- (N = policy notice period); end = start + 3 calendar years, exclusive (29 Feb → 28 Feb).
-- Status: revoked (trigger revoked) > pending (notice running) > listed > expired.
CREATE OR REPLACE TABLE rules.entries AS
WITH unit_rows AS (
    SELECT coalesce(r.name, t.subject_name) AS name, t.*
    FROM rules.unit_triggers t
    LEFT JOIN subjects.registry r ON r.uscc = t.subject_id
), principal_rows AS (
    -- the unit's principal: from the triggering penalty, else its accident, else the registry
    SELECT coalesce(t.principal_id_no, a.principal_id_no, r.principal_id_no) AS principal_code,
           coalesce(t.principal_name, a.principal_name, r.principal_name) AS principal, t.*
    FROM rules.unit_triggers t
    LEFT JOIN rules.accidents a ON a.accident_no = t.trigger_accident
    LEFT JOIN subjects.registry r ON r.uscc = t.subject_id
), subjects AS (
    SELECT ground, subject_type, subject_id, subject_code, name, department, record_id,
           decision_no, authority, authority_code, decision_date, basis, revoked, trigger_accident
    FROM unit_rows
    UNION ALL
    SELECT ground, 'person', 'P' || left(sha256((SELECT person_salt FROM params) || principal_code), 16),
           principal_code, principal, department, record_id,
           decision_no, authority, authority_code, decision_date, basis, revoked, trigger_accident
    FROM principal_rows WHERE principal_code IS NOT NULL
), dated AS (
    SELECT s.*,
           (SELECT min(c.d) FROM calendar c
             WHERE c.working AND c.ord = (SELECT c0.ord FROM calendar c0 WHERE c0.d = s.decision_date)
                                         + (SELECT notice_days FROM params)
                   AND (SELECT notice_days FROM params) > 0) AS notice_start
    FROM subjects s
)
SELECT
    'E' || left(sha256(concat_ws('|', authority_code, decision_no, dated.ground, subject_id)), 16) AS entry_id,
    subject_type, subject_id,
    CASE WHEN subject_type = 'person' THEN sc_mask(subject_code) ELSE subject_code END AS subject_code,
    subject_code AS subject_code_full,
    name, ground, ground_label AS ground_name, coalesce(basis, '') AS penalty_basis,
    '应急管理部令第11号' AS basis,
    decision_no, authority, authority_code, decision_date,
    coalesce(notice_start, decision_date) AS start_date,
    CAST(coalesce(notice_start, decision_date) + INTERVAL ((SELECT management_years FROM params)) YEAR AS DATE) AS end_date,
    department AS source_department, record_id AS source_record_id, trigger_accident,
    revoked
FROM dated JOIN (SELECT ground AS g_ground, name AS ground_label FROM grounds WHERE enabled) g ON g.g_ground = dated.ground
QUALIFY row_number() OVER (PARTITION BY entry_id ORDER BY source_department, source_record_id) = 1;

CREATE OR REPLACE TABLE rules.blacklist AS
SELECT entry_id, subject_type, subject_id, subject_code, name, ground, ground_name, basis,
       penalty_basis, decision_no, authority, authority_code, decision_date, start_date, end_date,
       CASE WHEN revoked THEN 'revoked'
            WHEN (SELECT as_of FROM params) < start_date THEN 'pending'
            WHEN (SELECT as_of FROM params) < end_date THEN 'listed'
            ELSE 'expired' END AS status,
       source_department, source_record_id, trigger_accident,
       (SELECT policy_version FROM params) AS policy_version,
       (SELECT as_of FROM params) AS as_of
FROM rules.entries
ORDER BY entry_id;
