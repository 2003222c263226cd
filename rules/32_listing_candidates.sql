-- Each deciding authority's work queue (feed listing_candidates; rules.md §3 "Candidates"): every
-- entry no written listing decision backs (inferred) that is still open — `pending` (its notice
-- running, or waiting for a decision the regime requires: B4, a decisions: complete department) or
-- `listed` on inference alone — with the ground, the records behind it and the dates:
--   notice_due_date    the day the notice period counted from day 0 ends (day 0 + N working days):
--                      by then the party must have been notified for the listing to start on time
--   decision_due_date  notice period + the policy grace (listing_decisions.grace_working_days,
--                      default 10 working days); a `pending` entry past it without a decision is
--                      overdue and reported (rules.md §3)
-- Entries an out-of-scope unit would have had never get here (rules/20_listing_triggers.sql).
CREATE OR REPLACE TABLE rules.listing_candidates AS
SELECT b.entry_id, b.authority, b.authority_code, b.regime, b.basis, b.decided, b.ground, b.ground_name,
       b.subject_type, b.subject_id, b.subject_code, b.name, b.role,
       b.decision_no, b.decision_date, b.penalty_basis, b.trigger_accident,
       b.source_department, b.source_record_id, e.trigger_source,
       e.notice_due_date, e.decision_due_date, b.status,
       b.status = 'listed' AS restricts_inferred,
       b.status = 'pending' AND e.decision_due_date IS NOT NULL
           AND (SELECT as_of FROM params) >= e.decision_due_date AS overdue,
       b.calendar_gap_year, b.policy_version
FROM rules.blacklist b
JOIN rules.entries e USING (entry_id)
WHERE NOT b.decided AND b.status IN ('pending', 'listed')
ORDER BY b.entry_id;

-- overdue inferred entries, for the run summary and the report
CREATE OR REPLACE TABLE rules.overdue_candidates AS
SELECT entry_id, authority, authority_code, regime, ground, subject_type, subject_id, decision_no, decision_date,
       notice_due_date, decision_due_date, source_department AS department, source_record_id AS record_id,
       'LISTING-DECISION-OVERDUE' AS rule_id,
       '处罚决定 ' || decision_no || ' 构成 ' || ground || ' 列入情形，告知期及宽限期已于 ' || decision_due_date
           || ' 届满，仍未收到列入决定。' AS message_zh,
       'decision ' || decision_no || ' grounds ' || ground || '; the notice period and grace ran out on '
           || decision_due_date || ' without a listing decision.' AS message_en
FROM rules.listing_candidates WHERE overdue
ORDER BY entry_id;
