-- The floor of bench/rules.py: the serious-dishonesty list and the credit scores written the most
-- direct way, by hand, over the same staged tables the rules engine reads (staged.*), with the
-- run's `params`, `calendar` and `grounds` temp tables (rules.prepare_params). Not part of the
-- product: it is what the engine's answer costs at least, to measure the engine against.
--
-- Same answer as rules/20_listing_triggers.sql + 25_listing_decisions.sql + 30_blacklist.sql (all
-- nine grounds of domain rules.md §3, unit + principal + penalised persons, A1's other penalised
-- units and persons, start/end with the working-day calendar, written listing decisions with their
-- own dates, 撤销列入, entries awaiting their authority's decision, statuses from credit actions) and
-- rules/50_credit_scores.sql (score and grade, forced D only for a `listed` entry), for the default
-- policy, except where it is only bookkeeping:
--   * only the version in force of each penalty is evaluated (no per-version triggers, no
--     history, no explanation items): an entry that only a corrected-away earlier version (of the
--     penalty, or of its accident: revoked or regraded) supported is missing here, where the engine
--     keeps it as `revoked`; a revoked record (latest
--     op = revoke) is evaluated on its last upsert and is `revoked`, as in the engine;
--   * one policy for every decision date (the default has one; the engine looks it up per date);
--   * one regime for every department, as bench/rules.py runs the engine (no sources file: every
--     department counts as kind `other`, regime `industry`): no industry scope (aq11), no
--     `decisions: complete` department, an inferred entry restricts on every ground but B4;
--   * the credit policy numbers (credit.yaml) are written in, not read from policy tables;
--     no components list, no 守信 conditions, no candidates, timeline or restrictions.
-- bench/rules.py runs it on a fresh connection after rules.prepare_params, both timed.

CREATE SCHEMA IF NOT EXISTS floor;

-- names compare as in rules/subjects/10_registry.sql (half-width, no spaces, one kind of bracket, …)
CREATE OR REPLACE TEMP MACRO f_name_key(s) AS
    nullif(replace(replace(replace(replace(regexp_replace(sc_half(s), '\s+', '', 'g'),
        '〔', '('), '〕', ')'), '有限责任公司', '有限公司'), '股份有限公司', '股份公司'), '');

-- registry versions with a principal, for the principal at the time (Asia/Shanghai local time)
CREATE OR REPLACE TEMP TABLE f_registry_principals AS
SELECT uscc, timezone('Asia/Shanghai', updated_at) AS local_at, principal_id_no
FROM staged.enterprises WHERE op = 'upsert' AND principal_id_no IS NOT NULL;

-- registry: the latest current version per USCC, only the columns the answer needs
CREATE OR REPLACE TEMP TABLE f_registry AS
SELECT uscc, name, standardization, established, principal_id_no, principal_name, reg_no, org_code, former_names
FROM (SELECT * FROM staged.enterprises
      QUALIFY row_number() OVER (PARTITION BY department, record_id
                                 ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) = 1)
WHERE op = 'upsert'
QUALIFY row_number() OVER (PARTITION BY uscc ORDER BY updated_at DESC, department) = 1;

-- penalty decisions in force: the last upsert per record, revoked when the record's latest version
-- is a revoke, with the date its first version said 拒不执行 (B3's day 0); a decision reported by several departments kept once (the decider's own report,
-- else the earliest); the subject resolved (USCC, else registration no., org code, unique name;
-- a person by the keyed hash of the ID number)
CREATE OR REPLACE TEMP TABLE f_last AS
WITH rec AS (   -- per record: when its last upsert was, and whether a revoke came at or after it
    SELECT department, record_id, max(updated_at) FILTER (WHERE op = 'upsert') AS upsert_at,
           coalesce(max(updated_at) FILTER (WHERE op = 'revoke') >= max(updated_at) FILTER (WHERE op = 'upsert'),
                    false) AS revoked,
           CAST(timezone('Asia/Shanghai', min(updated_at) FILTER (WHERE op = 'upsert' AND execution_status = '拒不执行'))
                AS DATE) AS refused_on
    FROM staged.penalties GROUP BY department, record_id
)   -- staging keeps one version per (department, record_id, updated_at, op): the join finds one row
SELECT p.department, p.record_id, p.updated_at, p.authority_code, p.decision_no, p.source_unit_code,
       p.decision_date, p.violation_code, p.severity, p.accident_no, p.penalty_types, p.fine_wan,
       p.principal_id_no, p.subject_name, p.uscc, p.reg_no, p.org_code, p.person_id_no,
       coalesce(p.penalised_party, '') = '个人' OR coalesce(p.subject_category, '') = '自然人' AS on_person,
       r.revoked, p.execution_status, r.refused_on
FROM staged.penalties p JOIN rec r
  ON r.department = p.department AND r.record_id = p.record_id AND r.upsert_at = p.updated_at
WHERE p.op = 'upsert';

CREATE OR REPLACE TEMP TABLE f_pen AS
WITH dup AS (   -- decisions reported more than once (rare): keep the decider's own report, else the earliest
    SELECT authority_code, decision_no FROM f_last GROUP BY ALL HAVING count(*) > 1
), losers AS (
    SELECT l.department, l.record_id FROM f_last l
    SEMI JOIN dup d ON d.authority_code IS NOT DISTINCT FROM l.authority_code
                   AND d.decision_no IS NOT DISTINCT FROM l.decision_no
    QUALIFY row_number() OVER (PARTITION BY l.authority_code, l.decision_no
                               ORDER BY (l.source_unit_code = l.authority_code) DESC, l.updated_at, l.department, l.record_id) > 1
), kept AS (
    SELECT * FROM f_last ANTI JOIN losers USING (department, record_id)
), unresolved AS (  -- units without a USCC: the only rows that need the registry's other keys
    SELECT department, record_id, reg_no, replace(org_code, '-', '') AS org, f_name_key(subject_name) AS name_key
    FROM kept WHERE NOT on_person AND uscc IS NULL
), by_reg AS (
    SELECT u.department, u.record_id, min(r.uscc) AS uscc FROM unresolved u JOIN f_registry r ON r.reg_no = u.reg_no
    GROUP BY ALL HAVING count(*) = 1
), by_org AS (
    SELECT u.department, u.record_id, min(r.uscc) AS uscc FROM unresolved u
    JOIN f_registry r ON coalesce(replace(r.org_code, '-', ''), substr(r.uscc, 9, 9)) = u.org
    GROUP BY ALL HAVING count(*) = 1
), by_name AS (   -- names and former names keyed only when some row needs them
    SELECT u.department, u.record_id, min(r.uscc) AS uscc
    FROM (SELECT uscc, unnest(list_prepend(name, coalesce(former_names, []))) AS nm FROM f_registry
          WHERE (SELECT count(*) FROM unresolved) > 0) r
    JOIN unresolved u ON u.name_key = f_name_key(r.nm)
    GROUP BY ALL HAVING count(DISTINCT r.uscc) = 1
), fallback AS (
    SELECT u.department, u.record_id, coalesce(g.uscc, o.uscc, n.uscc) AS uscc
    FROM unresolved u LEFT JOIN by_reg g USING (department, record_id) LEFT JOIN by_org o USING (department, record_id)
    LEFT JOIN by_name n USING (department, record_id)
)
SELECT k.* EXCLUDE (uscc, reg_no, org_code, person_id_no, subject_name, source_unit_code, updated_at),
       k.subject_name,
       CASE WHEN k.on_person THEN 'person' ELSE 'unit' END AS subject_type,
       CASE WHEN k.on_person THEN k.person_id_no ELSE coalesce(k.uscc, f.uscc) END AS subject_code,
       CASE WHEN k.on_person THEN 'P' || left(sha256((SELECT person_salt FROM params) || k.person_id_no), 16)
            ELSE coalesce(k.uscc, f.uscc) END AS subject_id
FROM kept k LEFT JOIN fallback f ON NOT k.on_person AND k.uscc IS NULL
                                  AND f.department = k.department AND f.record_id = k.record_id
WHERE CASE WHEN k.on_person THEN k.person_id_no ELSE coalesce(k.uscc, f.uscc) END IS NOT NULL;

-- accidents: the latest version per 事故编号, graded by the numbers where they are higher
CREATE OR REPLACE TEMP TABLE f_acc AS
SELECT accident_no, unit_uscc, liability, reporting, principal_id_no, principal_name, occurred_at,
       CAST(occurred_at AS DATE) AS occurred_date, coalesce(deaths, 0) AS deaths,
       greatest(CASE WHEN coalesce(deaths, 0) >= 30 OR coalesce(serious_injuries, 0) >= 100 OR coalesce(direct_loss_wan, 0) >= 10000 THEN 4
                     WHEN coalesce(deaths, 0) >= 10 OR coalesce(serious_injuries, 0) >= 50 OR coalesce(direct_loss_wan, 0) >= 5000 THEN 3
                     WHEN coalesce(deaths, 0) >= 3 OR coalesce(serious_injuries, 0) >= 10 OR coalesce(direct_loss_wan, 0) >= 1000 THEN 2
                     ELSE 1 END,
                CASE reported_grade WHEN '特别重大' THEN 4 WHEN '重大' THEN 3 WHEN '较大' THEN 2 ELSE 1 END) AS grade_level
FROM (SELECT * FROM staged.accidents
      QUALIFY row_number() OVER (PARTITION BY department, record_id
                                 ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) = 1)
WHERE op = 'upsert'
QUALIFY row_number() OVER (PARTITION BY accident_no ORDER BY updated_at DESC, department) = 1;

-- ---------------------------------------------------------------- the list
-- entries computed from the penalties, with the start their notice period counts
CREATE OR REPLACE TEMP TABLE f_entries AS
WITH a2 AS (   -- a 较大 liability accident that is the second of its unit within 12 calendar months
    SELECT DISTINCT l.accident_no
    FROM f_acc l JOIN f_acc e
      ON e.unit_uscc = l.unit_uscc AND e.accident_no <> l.accident_no
     AND e.occurred_date <= l.occurred_date AND e.occurred_date >= CAST(l.occurred_date - INTERVAL 12 MONTH AS DATE)
    WHERE l.grade_level = 2 AND l.liability = '责任事故' AND e.grade_level = 2 AND e.liability = '责任事故'
      AND l.occurred_date <= (SELECT as_of FROM params)
), hit AS (    -- (penalty, ground) for every ground a decision in force meets
    SELECT p.*, a.principal_id_no AS acc_principal_id, a.principal_name AS acc_principal, g.ground,
           a.occurred_at AS acc_occurred_at, a.unit_uscc AS acc_unit,
           CASE WHEN g.ground = 'B3' AND p.violation_code IS DISTINCT FROM 'REFUSED_EXECUTION' THEN p.refused_on
                ELSE p.decision_date END AS day0
    FROM f_pen p
    JOIN (VALUES ('ACCIDENT_LIABILITY', 'A1'), ('ACCIDENT_LIABILITY', 'A2'), ('ACCIDENT_LIABILITY', 'A3'),
                 ('ACCIDENT_CONCEALED', 'A4'), ('PRINCIPAL_ABSCONDED', 'A5'), ('UNLICENSED_OPERATION', 'B1'),
                 ('AGENCY_FRAUD', 'B2'), ('REFUSED_EXECUTION', 'B3'), ('OTHER', 'B4')) v(violation_code, ground)
      ON v.violation_code = p.violation_code    -- B3 also from 执行状态 拒不执行 (强制执行 after it)
      OR (v.ground = 'B3' AND p.execution_status IN ('拒不执行', '强制执行') AND p.refused_on <= (SELECT as_of FROM params))
    JOIN grounds g ON g.ground = v.ground AND g.enabled
    LEFT JOIN f_acc a ON a.accident_no = p.accident_no
    WHERE CASE g.ground
        WHEN 'A1' THEN p.violation_code = 'ACCIDENT_LIABILITY' AND a.liability = '责任事故' AND a.grade_level >= 3
        WHEN 'A2' THEN p.violation_code = 'ACCIDENT_LIABILITY' AND a.liability = '责任事故' AND a.grade_level = 2
                       AND p.accident_no IN (SELECT accident_no FROM a2)
        WHEN 'A3' THEN p.violation_code = 'ACCIDENT_LIABILITY' AND p.severity = '特别严重'
        WHEN 'A4' THEN p.violation_code = 'ACCIDENT_CONCEALED'
        WHEN 'A5' THEN p.violation_code = 'PRINCIPAL_ABSCONDED'
        WHEN 'B1' THEN p.violation_code = 'UNLICENSED_OPERATION'
        WHEN 'B2' THEN p.violation_code = 'AGENCY_FRAUD'
        WHEN 'B3' THEN p.violation_code = 'REFUSED_EXECUTION'
                       OR (p.execution_status IN ('拒不执行', '强制执行') AND p.refused_on <= (SELECT as_of FROM params))
        WHEN 'B4' THEN p.violation_code = 'OTHER' AND p.severity = coalesce(g.severity, '特别严重') END
      AND p.decision_date <= (SELECT as_of FROM params)
), listed AS (  -- who: the unit (not for A5), its principal (A1–A3, A5, B1, B3, B4), a penalised person (A1, A4, A5, B2)
    SELECT ground, 'unit' AS subject_type, subject_id, subject_id AS code,
           CASE WHEN ground = 'A1' AND subject_id IS DISTINCT FROM coalesce(acc_unit, subject_id)
                THEN 'other penalised unit' ELSE 'penalised unit' END AS role, h.*
    FROM hit h WHERE subject_type = 'unit' AND ground <> 'A5'
    UNION ALL
    -- the principal at the time: penalty, accident, else the registry version as of the accident, else day 0
    SELECT ground, 'person', 'P' || left(sha256((SELECT person_salt FROM params)
                                         || coalesce(h.principal_id_no, h.acc_principal_id, ra.principal_id_no,
                                                     rd.principal_id_no)), 16),
           coalesce(h.principal_id_no, h.acc_principal_id, ra.principal_id_no, rd.principal_id_no), 'principal', h.*
    FROM hit h
    ASOF LEFT JOIN f_registry_principals ra ON ra.uscc = h.subject_id AND h.acc_occurred_at >= ra.local_at
    ASOF LEFT JOIN f_registry_principals rd ON rd.uscc = h.subject_id AND CAST(h.day0 + 1 AS TIMESTAMP) > rd.local_at
    WHERE h.subject_type = 'unit' AND h.ground NOT IN ('A4', 'B2')
      AND NOT (h.ground = 'A1' AND h.subject_id IS DISTINCT FROM coalesce(h.acc_unit, h.subject_id))  -- another unit: no principal
      AND coalesce(h.principal_id_no, h.acc_principal_id, ra.principal_id_no, rd.principal_id_no) IS NOT NULL
    UNION ALL
    SELECT ground, 'person', subject_id, subject_code, 'penalised person', h.*
    FROM hit h WHERE subject_type = 'person' AND ground IN ('A1', 'A4', 'A5', 'B2')
), entries AS (
    SELECT 'E' || left(sha256(concat_ws('|', authority_code, decision_no, ground, subject_id)), 16) AS entry_id,
           ground, subject_type, subject_id, code AS subject_code_full, role, authority_code, decision_no,
           decision_date, day0, revoked, department, record_id
    FROM listed l
    -- A1: the accident unit's principal is listed as its principal, not a second time by his own penalty
    WHERE NOT (l.role = 'penalised person' AND l.ground = 'A1'
               AND EXISTS (SELECT 1 FROM listed q WHERE q.role = 'principal' AND q.ground = 'A1'
                                                    AND q.accident_no = l.accident_no AND q.code = l.code))
)
SELECT * FROM entries QUALIFY row_number() OVER (PARTITION BY entry_id ORDER BY department, record_id) = 1;

-- written listing decisions (列入决定书, rules.md §3 "Decisions"): the version in force of each record.
-- A 列入 decision names its entry by (authority, penalty decision no., ground, subject); of two for one
-- entry the later stands; it counts once dated on or before as_of. A 撤销列入 annuls the 列入 decision
-- it names whatever the dates (the listing never stood).
CREATE OR REPLACE TEMP TABLE f_decisions AS
WITH live AS (
    SELECT * FROM staged.listing_decisions
    QUALIFY row_number() OVER (PARTITION BY department, record_id
                               ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) = 1
), listing AS (
    SELECT 'E' || left(sha256(concat_ws('|', authority_code, penalty_decision_no, ground, subject_id)), 16) AS entry_id, *
    FROM (SELECT *, CASE WHEN subject_type = '个人' THEN 'person' ELSE 'unit' END AS subject_kind,
                 CASE WHEN subject_type = '个人'
                      THEN 'P' || left(sha256((SELECT person_salt FROM params) || subject_code), 16)
                      ELSE subject_code END AS subject_id
          FROM live WHERE op = 'upsert' AND decision_type = '列入')
), annulled AS (   -- the entry's latest 列入 decision of all known, annulled by a 撤销列入 of its authority
    SELECT l.entry_id FROM listing l
    QUALIFY row_number() OVER (PARTITION BY l.entry_id ORDER BY l.decision_date DESC, l.decision_no DESC, l.record_id) = 1
        AND EXISTS (SELECT 1 FROM live a WHERE a.op = 'upsert' AND a.decision_type = '撤销列入'
                                           AND a.authority_code = l.authority_code AND a.annulled_decision_no = l.decision_no)
)
SELECT l.entry_id, l.authority_code, l.penalty_decision_no, l.ground, l.subject_kind, l.subject_id, l.subject_code,
       l.department, l.record_id, l.decision_date AS listing_decision_date, l.start_date AS decided_start,
       l.end_date AS decided_end, true AS decided, false AS annulled
FROM listing l WHERE l.decision_date <= (SELECT as_of FROM params)
QUALIFY row_number() OVER (PARTITION BY l.entry_id ORDER BY l.decision_date DESC, l.decision_no DESC, l.record_id) = 1
UNION ALL   -- an annulment reaches every as_of, even one before the decision it annuls
SELECT entry_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, true FROM annulled;

CREATE OR REPLACE TABLE floor.blacklist AS
WITH decisions AS (
    SELECT entry_id, bool_or(decided) AS decided, bool_or(annulled) AS annulled,
           any_value(listing_decision_date) FILTER (WHERE decided) AS listing_decision_date,
           any_value(decided_start) FILTER (WHERE decided) AS decided_start,
           any_value(decided_end) FILTER (WHERE decided) AS decided_end
    FROM f_decisions GROUP BY entry_id
), unmatched AS (
    SELECT * FROM f_decisions WHERE decided AND entry_id NOT IN (SELECT entry_id FROM f_entries)
), own AS (  -- a decision that matches no computed entry is an entry of its own, from the penalty it names
    SELECT d.entry_id, d.ground, d.subject_kind AS subject_type, d.subject_id, d.subject_code AS subject_code_full,
           'decided ' || d.subject_kind AS role, d.authority_code, d.penalty_decision_no AS decision_no,
           coalesce(p.decision_date, d.listing_decision_date) AS decision_date,
           coalesce(p.decision_date, d.listing_decision_date) AS day0, coalesce(p.revoked, false) AS revoked,
           coalesce(p.department, d.department) AS department, coalesce(p.record_id, d.record_id) AS record_id
    FROM unmatched d
    LEFT JOIN (SELECT l.authority_code, l.decision_no, arg_min(l.decision_date, l.record_id) AS decision_date,
                      arg_min(l.revoked, l.record_id) AS revoked, arg_min(l.department, l.record_id) AS department,
                      min(l.record_id) AS record_id
               FROM f_last l SEMI JOIN unmatched u ON u.authority_code = l.authority_code
                                                  AND u.penalty_decision_no = l.decision_no
               GROUP BY ALL) p
           ON p.authority_code = d.authority_code AND p.decision_no = d.penalty_decision_no
), dated AS (
    -- counted: the N-th working day after day 0 (none in a year the calendar lacks: pending).
    -- decided: the decision's own start and end, else the counted ones (a decision dated in a year
    -- the calendar lacks: no start); inferred: the counted start, end = start + the management years
    SELECT x.*, coalesce(d.decided, false) AS decided, coalesce(d.annulled, false) AS annulled,
           CASE WHEN d.decided AND c.d IS NULL THEN NULL
                ELSE coalesce(CASE WHEN d.decided THEN d.decided_start END,
                              CASE WHEN p.notice_days = 0 THEN x.day0 ELSE c1.d END) END AS start_date,
           d.decided_end
    FROM (SELECT * FROM f_entries UNION ALL BY NAME SELECT * FROM own) x
    CROSS JOIN params p
    LEFT JOIN calendar c0 ON c0.d = x.day0
    LEFT JOIN calendar c1 ON c1.working AND c1.ord = c0.ord + p.notice_days
    LEFT JOIN decisions d USING (entry_id)
    LEFT JOIN calendar c ON c.d = d.listing_decision_date
), timed AS (
    SELECT d.*, coalesce(CASE WHEN d.decided AND d.start_date IS NOT NULL THEN d.decided_end END,
                         CAST(d.start_date + to_years(p.management_years) AS DATE)) AS end_date,
           -- an inferred entry restricts only on the default regime's grounds (A1–A5, B1–B3): an
           -- inferred B4 awaits its authority's decision, pending (rules.md §3)
           d.decided OR d.ground <> 'B4' AS restricts
    FROM dated d CROSS JOIN params p
), acts AS (
    SELECT d.entry_id,
           min(c.effective_date) FILTER (WHERE c.action_type = '异议成立') AS objection_date,
           max(c.effective_date) FILTER (WHERE c.action_type = '信用修复'
               AND c.effective_date >= CAST(d.start_date + to_months(p.repair_after_months) AS DATE)
               AND c.effective_date < d.end_date) AS repair_date,
           max(c.effective_date) FILTER (WHERE c.action_type = '撤销修复') AS repair_revoked_date
    FROM timed d CROSS JOIN params p
    JOIN (SELECT * FROM staged.credit_actions
          QUALIFY row_number() OVER (PARTITION BY department, record_id
                                     ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) = 1) c
      ON c.op = 'upsert' AND c.decision_no = d.decision_no AND c.subject_code = d.subject_code_full
     AND (c.effective_date <= p.as_of OR c.action_type = '异议成立')
    GROUP BY d.entry_id
)
SELECT d.entry_id, d.subject_type, d.subject_id, d.subject_code_full, d.role, d.ground, d.authority_code,
       d.decision_no, d.decision_date, d.decided, d.start_date, d.end_date,
       CASE WHEN d.revoked OR d.annulled THEN 'revoked'
            WHEN a.objection_date IS NOT NULL THEN 'objection_upheld'
            WHEN d.start_date IS NULL OR p.as_of < d.start_date THEN 'pending'   -- no start: unpublished year
            WHEN NOT d.restricts AND p.as_of < d.end_date THEN 'pending'         -- awaits its authority's decision
            WHEN a.repair_date IS NOT NULL AND NOT coalesce(a.repair_revoked_date > a.repair_date, false) THEN 'repaired'
            WHEN p.as_of >= d.end_date THEN 'expired'
            ELSE 'listed' END AS status,
       d.department AS source_department, d.record_id AS source_record_id
FROM timed d CROSS JOIN params p LEFT JOIN acts a USING (entry_id);

-- ---------------------------------------------------------------- credit scores (credit.yaml defaults)
-- windows: a date counts when as_of − N months < date ≤ as_of
CREATE OR REPLACE TABLE floor.credit_scores AS
WITH c AS (
    SELECT as_of, CAST(as_of - INTERVAL 12 MONTH AS DATE) AS m12, CAST(as_of - INTERVAL 24 MONTH AS DATE) AS m24
    FROM params
), pen AS (     -- unit penalties of the last 24 months, not revoked, with their deduction class
    SELECT p.subject_id AS uscc, p.decision_date, p.accident_no, p.violation_code,
           CASE WHEN list_has_any(coalesce(p.penalty_types, []), ['吊销许可证件', '责令关闭', '限制从业'])
                     OR p.fine_wan >= 100 OR p.severity = '特别严重' THEN -12
                WHEN len(coalesce(p.penalty_types, [])) > 0 AND list_has_all(['警告', '通报批评'], p.penalty_types)
                     AND coalesce(p.fine_wan, 0) = 0 THEN -2
                ELSE -8 END AS points
    FROM f_pen p, c
    WHERE p.subject_type = 'unit' AND NOT p.revoked AND p.decision_date > c.m24 AND p.decision_date <= c.as_of
), acc AS (     -- accidents of the last 24 months, attributed to the unit (else the unit penalised for it)
    SELECT coalesce(a.unit_uscc, pe.uscc) AS uscc, a.accident_no, a.occurred_date, a.grade_level,
           a.liability = '责任事故' AS is_liability, a.reporting
    FROM f_acc a
    LEFT JOIN (SELECT accident_no, min(subject_id) AS uscc FROM f_pen
               WHERE subject_type = 'unit' AND accident_no IS NOT NULL AND NOT revoked GROUP BY 1) pe
           ON pe.accident_no = a.accident_no AND a.unit_uscc IS NULL, c
    WHERE a.occurred_date > c.m24 AND a.occurred_date <= c.as_of AND coalesce(a.unit_uscc, pe.uscc) IS NOT NULL
), acc_u AS (
    SELECT a.uscc,
           sum(CASE a.grade_level WHEN 1 THEN -10 WHEN 2 THEN -30 WHEN 3 THEN -40 ELSE -50 END)
               FILTER (WHERE a.is_liability AND a.occurred_date > c.m12) AS points,
           bool_or(a.is_liability) AS liability_24m,
           bool_or(a.occurred_date > c.m12 AND (a.grade_level >= 2 OR a.reporting IN ('瞒报', '谎报'))) AS forced,
           count(*) FILTER (WHERE a.is_liability AND a.occurred_date > c.m12) AS liability_12m,
           list(a.accident_no) FILTER (WHERE a.is_liability AND a.occurred_date > c.m12) AS deducted
    FROM acc a, c GROUP BY a.uscc
), pen_u AS (
    SELECT p.uscc,
           sum(p.points) FILTER (WHERE p.decision_date > c.m12
                                   AND NOT coalesce(list_contains(au.deducted, p.accident_no), false)) AS points,
           count(*) FILTER (WHERE p.decision_date > c.m12) AS n12,
           bool_or(p.decision_date > c.m12 AND p.violation_code IN ('HIDDEN_DANGER_UNFIXED', 'ACCIDENT_CONCEALED')) AS forced
    FROM pen p CROSS JOIN c LEFT JOIN acc_u au ON au.uscc = p.uscc
    GROUP BY p.uscc
), listed AS (
    SELECT DISTINCT subject_id AS uscc FROM floor.blacklist WHERE subject_type = 'unit' AND status = 'listed'
), scored AS (
    SELECT r.uscc,
           CAST(greatest(0, least(100,
               CASE coalesce(nullif(r.standardization, ''), '无') WHEN '一级' THEN 90 WHEN '二级' THEN 80 WHEN '三级' THEN 70 ELSE 75 END
               + coalesce(au.points, 0) + coalesce(pu.points, 0) + CASE WHEN pu.n12 >= 2 THEN -5 ELSE 0 END
               + CASE WHEN pu.uscc IS NULL AND NOT coalesce(au.liability_24m, false)
                           AND coalesce(r.established <= c.m24, false) THEN 5 ELSE 0 END)) AS DECIMAL(8, 2)) AS score,
           coalesce(au.forced, false) OR coalesce(au.liability_12m >= 2, false) OR coalesce(pu.forced, false)
               OR l.uscc IS NOT NULL AS forced_d
    FROM f_registry r CROSS JOIN c
    LEFT JOIN acc_u au ON au.uscc = r.uscc
    LEFT JOIN pen_u pu ON pu.uscc = r.uscc
    LEFT JOIN listed l ON l.uscc = r.uscc
)
SELECT uscc, score,
       CASE WHEN forced_d OR score < 60 THEN 'D' WHEN score >= 85 THEN 'A' WHEN score >= 70 THEN 'B' ELSE 'C' END AS grade,
       forced_d
FROM scored;
