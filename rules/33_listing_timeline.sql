-- Every entry's status for every as_of, as intervals: what rules.blacklist would say in a run with
-- that as_of over the same data (rules.md §3; exchange.md §2 `as_of`: today's knowledge applied to
-- a past date). The API answers another as_of by filtering this table (valid_from <= as_of and
-- as_of < valid_until, NULL = open), never by re-deriving a status or a date.
--
-- A run with as_of D sees an entry once its triggering decision (B3 from 执行状态: the refusal) is
-- dated on or before D; a written listing decision, a repair and a revoked repair only once they
-- are dated on or before D; a revoked or corrected decision, an annulled listing (撤销列入) and an
-- upheld objection at every D (they apply backwards: the listing never stood). Before its written decision a decided entry is an
-- inferred one, with the counted dates (notice period, management years) and its regime's
-- `inferred_restricts`. The status is the CASE of rules.entry_status evaluated on each day where an
-- input of it changes (the breaks: the entry's appearance, its decision, start, end and credit
-- actions); between two breaks nothing changes, so equal neighbours merge into one interval.
-- Known limits: the entry's other fields (ground, regime, names) are today's; of two 列入 decisions
-- for one entry only the standing one is known; dates after the run's as_of assume nothing new lands.
CREATE OR REPLACE TEMP TABLE entry_phases AS
WITH e AS (
    SELECT entry_id, decided, listing_decision_date, start_date, end_date, repair_earliest,
           management_years, repair_after_months,
           greatest(day0, decision_date,
                    CASE WHEN trigger_source = 'listing_decision' THEN listing_decision_date END) AS exists_from,
           trigger_source = 'listing_decision' AS decision_only,
           -- the start an inferred entry counts (rules/30_blacklist.sql `started`): none across a year
           -- without a published holiday calendar
           CASE WHEN notice_days > 0 AND (notice_due_date IS NULL OR year(notice_due_date) >= next_gap_year)
                THEN NULL ELSE notice_due_date END AS inferred_start
    FROM rules.entries
)
-- inferred: an entry without a written decision, or a decided one before its decision's date
SELECT entry_id, exists_from AS phase_from, CASE WHEN decided THEN listing_decision_date END AS phase_until,
       false AS decided,
       CASE WHEN decided THEN inferred_start ELSE start_date END AS start_date,
       CASE WHEN decided THEN CAST(inferred_start + to_years(management_years) AS DATE) ELSE end_date END AS end_date,
       CASE WHEN decided THEN CAST(inferred_start + to_months(repair_after_months) AS DATE)
            ELSE repair_earliest END AS repair_earliest
FROM e
WHERE NOT decision_only AND (NOT decided OR exists_from < listing_decision_date)
UNION ALL
SELECT entry_id, greatest(exists_from, listing_decision_date), NULL, true, start_date, end_date, repair_earliest
FROM e
WHERE decided;

CREATE OR REPLACE TEMP TABLE entry_breaks AS
WITH dates AS (
    SELECT entry_id, phase_from, phase_until, unnest([phase_from, start_date, end_date]) AS d FROM entry_phases
    UNION ALL
    SELECT p.entry_id, p.phase_from, p.phase_until, x.d
    FROM entry_phases p
    JOIN (SELECT entry_id, effective_date AS d FROM rules.entry_actions WHERE action_type IN ('信用修复', '撤销修复')) x
      USING (entry_id)
)
SELECT DISTINCT entry_id, phase_from, d FROM dates
WHERE d >= phase_from AND (phase_until IS NULL OR d < phase_until);

CREATE OR REPLACE TEMP TABLE entry_states AS
WITH repairs AS (   -- rules/30_blacklist.sql `entry_status`, with the credit actions dated by each break
    SELECT k.entry_id, k.d,
           max(a.effective_date) FILTER (WHERE a.action_type = '信用修复' AND a.effective_date >= p.repair_earliest
                                              AND a.effective_date < p.end_date) AS repair_date,
           max(a.effective_date) FILTER (WHERE a.action_type = '撤销修复') AS repair_revoked_date
    FROM entry_breaks k
    JOIN entry_phases p USING (entry_id, phase_from)
    JOIN rules.entry_actions a ON a.entry_id = k.entry_id AND a.effective_date <= k.d
    GROUP BY ALL
)
SELECT k.entry_id, k.d, p.decided, p.start_date, p.end_date,
       CASE
           WHEN e.is_revoked THEN 'revoked'
           WHEN s.objection_date IS NOT NULL THEN 'objection_upheld'
           WHEN p.start_date IS NULL OR k.d < p.start_date THEN 'pending'
           WHEN NOT p.decided AND NOT e.inferred_restricts AND k.d < p.end_date THEN 'pending'
           WHEN r.repair_date IS NOT NULL AND NOT coalesce(r.repair_revoked_date > r.repair_date, false) THEN 'repaired'
           WHEN k.d >= p.end_date THEN 'expired'
           ELSE 'listed' END AS status
FROM entry_breaks k
JOIN entry_phases p USING (entry_id, phase_from)
JOIN rules.entries e USING (entry_id)
JOIN rules.entry_status s USING (entry_id)
LEFT JOIN repairs r USING (entry_id, d);

CREATE OR REPLACE TABLE rules.listing_timeline AS
WITH marked AS (
    SELECT *,
           CASE WHEN status IS NOT DISTINCT FROM lag(status) OVER w AND decided IS NOT DISTINCT FROM lag(decided) OVER w
                     AND start_date IS NOT DISTINCT FROM lag(start_date) OVER w
                     AND end_date IS NOT DISTINCT FROM lag(end_date) OVER w
                THEN 0 ELSE 1 END AS changed
    FROM entry_states
    WINDOW w AS (PARTITION BY entry_id ORDER BY d)
), islands AS (
    SELECT *, sum(changed) OVER (PARTITION BY entry_id ORDER BY d) AS island FROM marked
), intervals AS (
    SELECT entry_id, min(d) AS valid_from, any_value(status) AS status, any_value(decided) AS decided,
           any_value(start_date) AS start_date, any_value(end_date) AS end_date
    FROM islands GROUP BY entry_id, island
)
SELECT b.entry_id, i.valid_from, lead(i.valid_from) OVER (PARTITION BY b.entry_id ORDER BY i.valid_from) AS valid_until,
       b.subject_type, b.subject_id, b.subject_code, b.name, b.role, b.ground, b.ground_name, b.regime, b.basis,
       i.decided, b.decision_no, b.authority, b.authority_code, b.decision_date, i.start_date, i.end_date, i.status,
       b.policy_version
FROM intervals i
JOIN rules.blacklist b USING (entry_id)
ORDER BY b.entry_id, i.valid_from;

DROP TABLE entry_states;
DROP TABLE entry_breaks;
DROP TABLE entry_phases;
