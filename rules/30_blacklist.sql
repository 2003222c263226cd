-- The serious-dishonesty list (严重失信主体名单) as of params.as_of, with each entry's history.
--
-- One entry per (deciding authority, decision, ground, subject); its id derives from those, so it
-- never changes across runs. Dates (Asia/Shanghai): day 0 = decision date (B3 from 执行状态: the date
-- the refusal was recorded, rules/20_listing_triggers.sql); the listing starts on
-- the Nth working day after it (N = policy notice period, calendar from policy; N = 0 starts on
-- day 0); end = start + management years, exclusive (29 Feb → 28 Feb). The calendar holds only the
-- years a 国务院办公厅 notice published (safecredit/workdays.py): a notice period that reaches any
-- other year has no start, stays `pending` and is reported in rules.calendar_gaps, naming the year —
-- never counted Monday–Friday.
--
-- Decided or inferred (rules.md §3; rules/25_listing_decisions.sql): an entry a written listing
-- decision matches is `decided` and takes the decision's start and end dates (a decision dated in a
-- year the calendar lacks is not listed and is reported, naming the year). An entry without one is
-- inferred: it restricts only on its regime's `inferred_restricts` grounds (never B4 by default) and
-- never when its department is marked `decisions: complete` (regimes.yaml, the sources file).
--
-- Status at as_of, first that applies:
--   revoked           the decision was revoked, or corrected so that it no longer qualifies
--                     (today's knowledge applies backwards: the penalty counts as never made), or
--                     its listing decision was annulled (撤销列入, known now, whatever the as_of):
--                     it never restricted
--   objection_upheld  an upheld objection (异议成立): the listing never stood
--   pending           the notice period is still running; or an inferred entry that may not
--                     restrict waits for its decision (until its management period would end)
--   repaired          信用修复 effective on or before as_of, at least N months after the start,
--                     and not revoked (撤销修复) since; an earlier repair is rejected with a reason
--   expired           the management period ran out
--   listed            otherwise — the only status that restricts
CREATE OR REPLACE TABLE rules.entry_versions AS
SELECT 'E' || left(sha256(concat_ws('|', authority_code, decision_no, ground, subject_id)), 16) AS entry_id, *
FROM rules.trigger_versions;

CREATE OR REPLACE TABLE rules.entries AS
-- One row per entry out of its versions (issue 10 §3; ../shared/perf/README.md): almost every entry
-- has one version, which is its own aggregate; only the entries with several (a corrected decision)
-- are aggregated, instead of a dozen arg_max over the whole width of every entry.
WITH several AS (
    SELECT entry_id FROM rules.entry_versions GROUP BY entry_id HAVING count(*) > 1
), agg AS (
    SELECT v.entry_id, v.is_latest AS qualifies_now, v.revoked AS decision_revoked,
           v.revoked_at AS decision_revoked_at, v.updated_at AS last_qualifying_version_at,
           v.landed_at AS first_landed_at, v.* EXCLUDE (entry_id)
    FROM rules.entry_versions v ANTI JOIN several s ON s.entry_id = v.entry_id
    UNION ALL BY NAME
    SELECT entry_id,
           bool_or(is_latest) AS qualifies_now,
           bool_or(revoked) AS decision_revoked,
           max(revoked_at) AS decision_revoked_at,
           max(updated_at) AS last_qualifying_version_at,
           min(landed_at) AS first_landed_at,
           arg_max(COLUMNS(* EXCLUDE (entry_id)), updated_at)
    FROM rules.entry_versions v SEMI JOIN several s ON s.entry_id = v.entry_id
    GROUP BY entry_id
), day_policy AS (   -- the policy in force on each distinct day 0: the ASOF join on the days alone
                     -- (on the entries it sorted their whole width)
    SELECT d.day0, pt.policy_version, pt.notice_days, pt.management_years, pt.repair_after_months
    FROM (SELECT DISTINCT day0 FROM agg) d
    ASOF LEFT JOIN policy_timeline pt ON d.day0 >= pt.effective_from
), latest_version AS (   -- when a correction stopped qualifying: the version in force's date
    SELECT department, record_id, updated_at AS latest_version_at
    FROM subjects.penalty_decisions WHERE report_rank = 1
), regime AS (   -- regimes.yaml: which inferred grounds restrict, and periods where a regime overrides
    SELECT regime, string_split(replace(coalesce(CAST(inferred_restricts AS VARCHAR), ''), ' ', ''), ',') AS inferred_grounds,
           TRY_CAST(notice_working_days AS INTEGER) AS notice_days, TRY_CAST(management_years AS INTEGER) AS management_years,
           TRY_CAST(repair_after_months AS INTEGER) AS repair_after_months
    FROM policy_regimes
), cal AS (SELECT d, working, ord FROM calendar), dec AS (
    SELECT a.*, lv.latest_version_at, c0.ord AS decision_ord, coalesce(ng.gap_year, year(a.day0)) AS next_gap_year,
           coalesce(pt.policy_version, (SELECT policy_version FROM params)) AS entry_policy_version,
           coalesce(rg.notice_days, pt.notice_days, (SELECT notice_days FROM params)) AS notice_days,
           coalesce(rg.management_years, pt.management_years, (SELECT management_years FROM params)) AS management_years,
           coalesce(rg.repair_after_months, pt.repair_after_months, (SELECT repair_after_months FROM params))
               AS repair_after_months,
           ld.entry_id IS NOT NULL AS decided, ld.listing_decision_no, ld.listing_decision_date, ld.decided_start,
           ld.decided_end, an.annulled_on, an.annulled_by,
           -- an inferred entry restricts only on the regime's grounds (never B4 by default), and never
           -- when its department sends a decision for every listing (decisions: complete)
           coalesce(list_contains(rg.inferred_grounds, a.ground), false)
               AND coalesce(ds.decisions, 'partial') <> 'complete' AS inferred_restricts
    FROM agg a
    LEFT JOIN latest_version lv USING (department, record_id)
    LEFT JOIN cal c0 ON c0.d = a.day0
    LEFT JOIN calendar_next_gap ng ON ng.year = year(a.day0)
    LEFT JOIN regime rg ON rg.regime = a.regime
    LEFT JOIN rules.department_settings ds ON ds.department = a.department
    LEFT JOIN rules.listing_decisions ld ON ld.entry_id = a.entry_id
    LEFT JOIN rules.annulled_entries an ON an.entry_id = a.entry_id   -- 撤销列入 known now: every as_of
    -- the policy in force on day 0 (the decision date but for B3 from 执行状态: the refusal's date)
    LEFT JOIN day_policy pt ON pt.day0 = a.day0
), counted AS (
    SELECT dec.*,
           CASE WHEN dec.notice_days = 0 THEN dec.day0 ELSE c1.d END AS counted_start,
           c2.d AS decision_due_date
    FROM dec
    LEFT JOIN cal c1 ON c1.working AND c1.ord = dec.decision_ord + dec.notice_days
    LEFT JOIN cal c2 ON c2.working
                    AND c2.ord = dec.decision_ord + dec.notice_days + CAST(pol('listing_decisions.grace_working_days') AS INTEGER)
), started AS (
    -- inferred: counting into (or across) an unpublished year finds no day, or one past the gap;
    -- decided: the decision's own dates win, but a decision dated in a year the calendar lacks is
    -- not listed (rules.md §3), naming the year
    SELECT * EXCLUDE (counted_start, calendar_gap_year),
           counted_start AS notice_due_date,
           CASE WHEN calendar_gap_year IS NOT NULL THEN NULL
                WHEN decided THEN coalesce(decided_start, counted_start) ELSE counted_start END AS start_date,
           calendar_gap_year
    FROM (SELECT *, CASE WHEN decided THEN CASE WHEN year(listing_decision_date) NOT IN (SELECT year FROM calendar_years)
                                                THEN year(listing_decision_date) END
                         WHEN notice_days > 0 AND (counted_start IS NULL OR year(counted_start) >= next_gap_year)
                         THEN next_gap_year END AS calendar_gap_year FROM counted)
)
SELECT *,
       coalesce(CASE WHEN decided AND start_date IS NOT NULL THEN decided_end END,
                CAST(start_date + to_years(management_years) AS DATE)) AS end_date,
       CAST(start_date + to_months(repair_after_months) AS DATE) AS repair_earliest,
       decision_revoked OR NOT qualifies_now OR annulled_on IS NOT NULL AS is_revoked,
       CASE WHEN annulled_on IS NOT NULL THEN annulled_on   -- 撤销列入: the listing never stood
            WHEN decision_revoked THEN CAST(timezone('Asia/Shanghai', decision_revoked_at) AS DATE)
            -- the penalty's correction, or its accident's revocation or regrading, whichever came later
            WHEN NOT qualifies_now THEN CAST(timezone('Asia/Shanghai', greatest(latest_version_at,
                                            coalesce(accident_changed_at, latest_version_at))) AS DATE)
       END AS revoked_date
FROM started;  -- one row per entry: agg is grouped by entry_id and every join after it is 1:1

-- entries whose notice period reaches a year the calendar does not hold: not listed, reported
CREATE OR REPLACE TABLE rules.calendar_gaps AS
SELECT entry_id, ground, subject_type, subject_id, authority_code, decision_no, decision_date, day0, notice_days,
       department, record_id, calendar_gap_year AS year, 'LISTING-CALENDAR-YEAR-UNPUBLISHED' AS rule_id,
       CASE WHEN decided
            THEN '列入决定 ' || listing_decision_no || ' 的决定日期 ' || listing_decision_date || ' 所在的 '
                 || calendar_gap_year || ' 年尚无国务院办公厅公布的节假日安排，暂不列入。'
            WHEN year(day0) = calendar_gap_year
            THEN '起算日 ' || day0 || ' 所在的 ' || calendar_gap_year
                 || ' 年尚无国务院办公厅公布的节假日安排，无法计算告知期，暂不列入。'
            ELSE '告知期（自 ' || day0 || ' 起 ' || notice_days || ' 个工作日）延伸至 ' || calendar_gap_year
                 || ' 年，该年尚无国务院办公厅公布的节假日安排，暂不列入。' END AS message_zh,
       CASE WHEN decided
            THEN 'listing decision ' || listing_decision_no || ' is dated ' || listing_decision_date || ', in '
                 || calendar_gap_year || ', a year with no published 国务院办公厅 holiday calendar; not listed.'
            WHEN year(day0) = calendar_gap_year
            THEN 'day 0 ' || day0 || ' is in ' || calendar_gap_year || ', a year with no published '
                 || '国务院办公厅 holiday calendar: the notice period cannot be counted; not listed.'
            ELSE 'the notice period (' || notice_days || ' working days from ' || day0 || ') reaches '
                 || calendar_gap_year || ', a year with no published 国务院办公厅 holiday calendar; not listed.'
       END AS message_en
FROM rules.entries WHERE calendar_gap_year IS NOT NULL
ORDER BY ALL;

-- credit actions that name an entry's decision and subject, as known and in force by as_of
CREATE OR REPLACE TABLE rules.entry_actions AS
SELECT e.entry_id, e.start_date, e.end_date, e.repair_earliest, c.action_type, c.effective_date,
       c.department, c.record_id, c.decision_no
FROM rules.entries e
JOIN k_credit_actions_current c
  ON c.decision_no = e.decision_no AND c.subject_code = e.subject_code_full
WHERE c.effective_date <= (SELECT as_of FROM params) OR c.action_type = '异议成立';

-- a repair before the minimum period is refused: the listing stands (reported, not silently dropped)
CREATE OR REPLACE TABLE rules.rejected_credit_actions AS
SELECT entry_id, department, 'credit_actions' AS dataset, record_id, action_type, effective_date,
       'LISTING-REPAIR-TOO-EARLY' AS rule_id,
       '信用修复早于最早可修复日期 ' || repair_earliest || '，修复不予采纳，列入继续有效。' AS message_zh,
       'repair before the earliest repair date (' || repair_earliest
           || '); the repair is refused and the listing stands.' AS message_en
FROM rules.entry_actions
WHERE action_type = '信用修复' AND effective_date < repair_earliest
ORDER BY ALL;

CREATE OR REPLACE TABLE rules.entry_status AS
WITH acts AS (
    SELECT entry_id,
           min(effective_date) FILTER (WHERE action_type = '异议成立') AS objection_date,
           max(effective_date) FILTER (WHERE action_type = '信用修复' AND effective_date >= repair_earliest
                                              AND effective_date < end_date) AS repair_date,
           max(effective_date) FILTER (WHERE action_type = '撤销修复') AS repair_revoked_date
    FROM rules.entry_actions GROUP BY entry_id
)
SELECT e.entry_id, a.objection_date, a.repair_date,
       CASE WHEN a.repair_revoked_date > a.repair_date THEN a.repair_revoked_date END AS repair_revoked_date,
       CASE
           WHEN e.is_revoked THEN 'revoked'
           WHEN a.objection_date IS NOT NULL THEN 'objection_upheld'
           WHEN e.start_date IS NULL OR (SELECT as_of FROM params) < e.start_date THEN 'pending'
           -- an inferred entry the regime does not let restrict (B4; a decisions: complete department)
           -- waits for its decision while its management period would run
           WHEN NOT e.decided AND NOT e.inferred_restricts AND (SELECT as_of FROM params) < e.end_date THEN 'pending'
           WHEN a.repair_date IS NOT NULL AND NOT coalesce(a.repair_revoked_date > a.repair_date, false) THEN 'repaired'
           WHEN (SELECT as_of FROM params) >= e.end_date THEN 'expired'
           ELSE 'listed' END AS status
FROM rules.entries e LEFT JOIN acts a USING (entry_id);

-- every status change an entry went through up to as_of (revocation and an upheld objection
-- apply backwards but keep the date they happened)
CREATE OR REPLACE TABLE rules.entry_history AS
WITH ev AS (
    SELECT entry_id, day0 AS event_date, 1 AS ord, 'pending' AS status,
           CASE trigger_source WHEN 'execution_status' THEN '拒不执行 recorded' ELSE 'penalty decision' END AS cause
    FROM rules.entries WHERE start_date IS NULL OR start_date > day0
    UNION ALL SELECT entry_id, start_date, 2, 'listed',
                     CASE WHEN decided THEN '列入决定 ' || listing_decision_no ELSE 'notice period ended' END
              FROM rules.entries WHERE start_date IS NOT NULL AND (decided OR inferred_restricts)
    UNION ALL SELECT entry_id, repair_date, 3, 'repaired', '信用修复' FROM rules.entry_status WHERE repair_date IS NOT NULL
    UNION ALL SELECT entry_id, repair_revoked_date, 4, 'listed', '撤销修复: listing restored'
              FROM rules.entry_status WHERE repair_revoked_date IS NOT NULL
    UNION ALL SELECT e.entry_id, e.end_date, 5, 'expired', 'management period ended'
              FROM rules.entries e JOIN rules.entry_status s USING (entry_id)
              WHERE s.repair_date IS NULL OR s.repair_revoked_date IS NOT NULL
    UNION ALL SELECT entry_id, objection_date, 6, 'objection_upheld', '异议成立' FROM rules.entry_status WHERE objection_date IS NOT NULL
    UNION ALL SELECT entry_id, revoked_date, 7, 'revoked',
                     CASE WHEN annulled_on IS NOT NULL THEN '撤销列入 ' || annulled_by
                          ELSE 'decision revoked or no longer qualifying' END
              FROM rules.entries WHERE is_revoked
)
SELECT * FROM ev
WHERE event_date <= (SELECT as_of FROM params) OR status IN ('revoked', 'objection_upheld')
ORDER BY entry_id, event_date, ord;

CREATE OR REPLACE TABLE rules.blacklist AS
SELECT e.entry_id, e.subject_type, e.subject_id,
       CASE WHEN e.subject_type = 'person' THEN sc_mask(e.subject_code_full) ELSE e.subject_code_full END AS subject_code,
       e.subject_code_full,
       coalesce(r.name, e.name) AS name, e.role, e.ground, g.name AS ground_name,
       e.regime, e.regime_basis AS basis, e.decided, e.listing_decision_no, e.listing_decision_date,
       NOT e.decided AND NOT e.inferred_restricts AS awaits_decision,
       e.basis AS penalty_basis,
       e.decision_no, e.authority, e.authority_code, e.decision_date, e.start_date, e.end_date,
       s.status,
       h.status_date, e.calendar_gap_year,
       -- the ground lists the unit's principal, but none of the time is known (rules.principal_gaps)
       e.subject_type = 'unit' AND pg.decision_no IS NOT NULL AS principal_gap,
       s.repair_date, s.objection_date, e.revoked_date,
       e.department AS source_department, e.record_id AS source_record_id, e.accident_no AS trigger_accident,
       e.entry_policy_version AS policy_version,
       (SELECT as_of FROM params) AS as_of
FROM rules.entries e
JOIN rules.entry_status s USING (entry_id)
LEFT JOIN grounds g ON g.ground = e.ground
LEFT JOIN (SELECT entry_id, status, max(event_date) AS status_date FROM rules.entry_history GROUP BY ALL) h
       ON h.entry_id = e.entry_id AND h.status = s.status
LEFT JOIN subjects.registry r ON e.subject_type = 'unit' AND r.uscc = e.subject_id
LEFT JOIN (SELECT DISTINCT ground, unit_uscc, authority_code, decision_no FROM rules.principal_gaps) pg
       ON pg.ground = e.ground AND pg.unit_uscc = e.subject_id AND pg.authority_code = e.authority_code
      AND pg.decision_no = e.decision_no
ORDER BY e.entry_id;
