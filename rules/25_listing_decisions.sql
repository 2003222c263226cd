-- Written listing decisions (列入决定书, department-feeds.md §3.6; rules.md §3 "Decisions").
--
-- A listing is an administrative act: notice, the party's statement, then a written decision. A
-- department that keeps its list in its own system sends its decisions (dataset listing_decisions).
--   matching   a 列入 decision matches the computed entry with the same (deciding authority code,
--              penalty decision number, ground, subject): the entry id derives from exactly those
--              (rules/30_blacklist.sql), so the decision names its entry. The matched entry is
--              decided and takes the decision's start and end dates.
--   its own    a decision that matches no computed entry becomes an entry of its own (decided, with
--              its ground; the penalty it names supplies the records behind it where known) and is
--              reported as a disagreement (rules.listing_decision_issues).
--   撤销列入    annuls the listing decision it names (MD_YWSH, same authority): the entry turns
--              `revoked`; as of any date it never restricted (rules.md §3) — like a revoked
--              penalty, an annulment known now applies to every as_of, even one before it or
--              before the decision it annuls (rules.annulled_entries; rules/30_blacklist.sql).
-- Only 列入 decisions dated on or before as_of count; the version in force of each record (k_*_current).
CREATE OR REPLACE TEMP TABLE listing_decisions_known AS
SELECT d.*,
       CASE d.subject_type WHEN '个人' THEN 'person' ELSE 'unit' END AS subject_kind,
       CASE WHEN d.decision_type = '列入' AND d.subject_type = '个人'
            THEN 'P' || left(sha256((SELECT person_salt FROM params) || d.subject_code), 16)
            WHEN d.decision_type = '列入' THEN d.subject_code END AS subject_id
FROM k_listing_decisions_current d;

CREATE OR REPLACE TEMP TABLE annulments AS
SELECT authority_code, annulled_decision_no, min(decision_date) AS annulled_on,
       arg_min(decision_no, decision_date) AS annulled_by
FROM listing_decisions_known WHERE decision_type = '撤销列入' GROUP BY ALL;

-- every entry whose standing 列入 decision (of all known) is annulled, whatever the dates
CREATE OR REPLACE TABLE rules.annulled_entries AS
SELECT * EXCLUDE (decision_date, decision_no, record_id) FROM (
    SELECT 'E' || left(sha256(concat_ws('|', l.authority_code, l.penalty_decision_no, l.ground, l.subject_id)), 16)
               AS entry_id,
           a.annulled_on, a.annulled_by, l.decision_date, l.decision_no, l.record_id
    FROM listing_decisions_known l
    LEFT JOIN annulments a ON a.authority_code = l.authority_code AND a.annulled_decision_no = l.decision_no
    WHERE l.decision_type = '列入'
    QUALIFY row_number() OVER (PARTITION BY entry_id ORDER BY l.decision_date DESC, l.decision_no DESC, l.record_id) = 1
)
WHERE annulled_on IS NOT NULL;

CREATE OR REPLACE TABLE rules.listing_decisions AS
WITH d AS (
    SELECT * FROM listing_decisions_known WHERE decision_date <= (SELECT as_of FROM params)
), listings AS (
    SELECT * FROM d WHERE decision_type = '列入'
)
SELECT 'E' || left(sha256(concat_ws('|', l.authority_code, l.penalty_decision_no, l.ground, l.subject_id)), 16)
           AS entry_id,
       l.department, l.record_id, l.updated_at, l.landed_at, l.decision_no AS listing_decision_no,
       l.decision_date AS listing_decision_date, l.start_date AS decided_start, l.end_date AS decided_end,
       l.subject_kind AS subject_type, l.subject_id, l.subject_code, l.subject_name, l.ground,
       l.penalty_decision_no, l.authority, l.authority_code, nullif(l.regime, '') AS decided_regime,
       a.annulled_on, a.annulled_by
FROM listings l
LEFT JOIN annulments a ON a.authority_code = l.authority_code AND a.annulled_decision_no = l.decision_no
-- two 列入 decisions for one entry: the later one stands
QUALIFY row_number() OVER (PARTITION BY entry_id ORDER BY l.decision_date DESC, l.decision_no DESC, l.record_id) = 1;

-- decisions that match no computed entry: entries of their own, from the penalty they name
CREATE OR REPLACE TEMP TABLE decisions_unmatched AS
SELECT d.*, coalesce(ds.kind, 'other') AS department_kind
FROM rules.listing_decisions d
LEFT JOIN rules.department_settings ds ON ds.department = d.department
WHERE d.entry_id NOT IN (
    SELECT 'E' || left(sha256(concat_ws('|', authority_code, decision_no, ground, subject_id)), 16)
    FROM rules.trigger_versions);

INSERT INTO rules.trigger_versions BY NAME
SELECT d.ground, d.subject_type, d.subject_id, d.subject_code AS subject_code_full, d.subject_name AS name,
       CASE d.subject_type WHEN 'unit' THEN 'decided unit' ELSE 'decided person' END AS role,
       'listing_decision' AS trigger_source, d.authority_code, d.penalty_decision_no AS decision_no,
       coalesce(d.authority, p.authority) AS authority,
       coalesce(p.decision_date, d.listing_decision_date) AS decision_date,
       coalesce(p.decision_date, d.listing_decision_date) AS day0,
       coalesce(p.is_latest, true) AS is_latest, coalesce(p.revoked, false) AS revoked, p.revoked_at,
       coalesce(p.updated_at, d.updated_at) AS updated_at, coalesce(p.landed_at, d.landed_at) AS landed_at,
       coalesce(p.department, d.department) AS department, coalesce(p.record_id, d.record_id) AS record_id,
       p.basis, p.accident_no,
       coalesce(d.decided_regime, k.regime) AS regime,
       coalesce(k.regime_basis, r.basis, r.name) AS regime_basis
FROM decisions_unmatched d
LEFT JOIN (SELECT * FROM subjects.penalties
           QUALIFY row_number() OVER (PARTITION BY authority_code, decision_no ORDER BY subject_id, record_id) = 1) p
       ON p.authority_code = d.authority_code AND p.decision_no = d.penalty_decision_no
LEFT JOIN regime_by_kind k ON k.kind = d.department_kind AND k.regime = coalesce(d.decided_regime, k.regime)
LEFT JOIN policy_regimes r ON r.regime = coalesce(d.decided_regime, k.regime);

-- what the decisions say that the computed list does not: reported, never silent
CREATE OR REPLACE TABLE rules.listing_decision_issues AS
SELECT 'disagreement' AS issue, entry_id, department, 'listing_decisions' AS dataset, record_id,
       listing_decision_no AS decision_no, authority_code, ground, penalty_decision_no,
       'LISTING-DECISION-DISAGREES' AS rule_id,
       '列入决定 ' || listing_decision_no || '（' || ground || '，处罚决定 ' || penalty_decision_no
           || '）与按处罚计算的名单不一致：以列入决定为准，单独列为条目，请核对。' AS message_zh,
       'listing decision ' || listing_decision_no || ' (' || ground || ', penalty ' || penalty_decision_no
           || ') matches no computed entry: the decision stands as an entry of its own; please check.' AS message_en
FROM decisions_unmatched
UNION ALL
SELECT 'annuls_unknown', NULL, department, 'listing_decisions', record_id, decision_no, authority_code, NULL, NULL,
       'LISTING-DECISION-ANNULS-UNKNOWN',
       '撤销列入决定 ' || decision_no || ' 所撤销的列入决定 ' || annulled_decision_no || ' 不在已知的列入决定中。',
       '撤销列入 decision ' || decision_no || ' annuls listing decision ' || annulled_decision_no
           || ', which is not among the known listing decisions.'
FROM k_listing_decisions_current a
WHERE decision_type = '撤销列入' AND decision_date <= (SELECT as_of FROM params)
  AND NOT EXISTS (SELECT 1 FROM k_listing_decisions_current l
                  WHERE l.decision_type = '列入' AND l.authority_code = a.authority_code
                    AND l.decision_no = a.annulled_decision_no)
ORDER BY ALL;

DROP TABLE decisions_unmatched;
