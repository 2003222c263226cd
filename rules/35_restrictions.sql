-- Joint punishment (联合惩戒) in force on params.as_of: rules.md §4, exchange.md §2.
--
-- rules.restrictions holds one row per restriction that binds on as_of, nothing else: the API
-- answers "restricted" for (code, matter) when a row exists, with restricted_until from it. It is
-- rules.restriction_timeline (below: every restriction with the interval of as_of dates it binds
-- on, for the API's answers about other dates) taken at as_of, so the two never disagree.
-- Each row carries its measure's own legal basis from the policy (measures.basis, or the ban's),
-- and basis_unconfirmed where the policy marks that basis `unconfirmed` (rules.md §4).
--   source = 'listing'  one row per `listed` entry of rules.blacklist (rules.listing_timeline) × measure of the policy
--                       table `measures` (policy_measures) that applies to the subject type
--                       (unit | person | both) and ground. Only `listed` restricts: pending,
--                       expired, repaired, objection_upheld and revoked entries have no rows (the
--                       blacklist feed keeps them with their status). restricted_from = start_date;
--                       restricted_until = end_date (exclusive, the day the measure lifts), or
--                       start + `years` for duration = years. Only the measures of the entry's regime
--                       (regimes.yaml `measures`); the row carries the entry's regime, listing basis
--                       and whether a written decision backs it (`decided`).
--   source = 'ban'      statutory bans on persons shown by their own penalties (policy table
--                       `person_bans`): 限制从业 until CF_YXQ (empty = for life), 安全生产法 Art. 94 ¶3
--                       (life, in the accident's industry, only for the unit's principal at the
--                       time of a 重大/特别重大 accident he is penalised for), Art. 92 ¶3 (agency
--                       staff). A listing alone bars nobody from principal roles (rules.md §4): that
--                       matter comes only from a ban, and carries the ban's basis. restricted_from = decision date; restricted_until NULL with
--                       for_life = true for a life ban. Revoked penalties count as never made.
-- Ids, stable across runs: a ban's entry_id is 'B' + a hash of (penalty_id, ban) — the ban is an
-- entry of its own, not of the blacklist — so (entry_id, matter), the feed's id, is unique over both
-- sources; restriction_id is the same identity in one column. penalty_id (the listing's triggering
-- decision, or the ban's) is that of penalties_public.

-- The measures a listing brings, per regime (regimes.yaml `measures`: '*' = every matter), under
-- each policy version: an entry takes them from the policy in force on its decision date (its
-- policy_version, rules/30_blacklist.sql), as it takes its listing periods (rules.md §3).
CREATE OR REPLACE TEMP TABLE listing_measures AS
WITH m AS (
    SELECT policy_version, matter, name, measure, department, basis, coalesce(TRY_CAST(unconfirmed AS BOOLEAN), false) AS basis_unconfirmed,
           applies_to,
           coalesce(TRY_CAST(on_listing AS BOOLEAN), true) AS on_listing,
           string_split(replace(coalesce(CAST(grounds AS VARCHAR), '*'), ' ', ''), ',') AS grounds,
           coalesce(CAST(duration AS VARCHAR), 'listing') AS duration,
           TRY_CAST(years AS INTEGER) AS years
    FROM policy_measures_by_version
)
SELECT rm.regime, m.* EXCLUDE (on_listing)
FROM m
JOIN (SELECT policy_version, regime,
             string_split(replace(coalesce(CAST(measures AS VARCHAR), '*'), ' ', ''), ',') AS matters
      FROM policy_regimes_by_version) rm
  ON rm.policy_version = m.policy_version AND (list_contains(rm.matters, '*') OR list_contains(rm.matters, m.matter))
WHERE m.on_listing;

-- whether a measure binds a listed entry (its subject type and ground), and until when (exclusive)
CREATE OR REPLACE TEMP MACRO measure_binds(m_applies_to, m_grounds, e_subject_type, e_ground) AS
    m_applies_to IN (e_subject_type, 'both') AND (list_contains(m_grounds, '*') OR list_contains(m_grounds, e_ground));
CREATE OR REPLACE TEMP MACRO measure_until(m_duration, m_years, e_start, e_end) AS
    CASE WHEN m_duration = 'years' THEN CAST(e_start + to_years(m_years) AS DATE) ELSE e_end END;

-- every person ban decided by as_of, with its own window (whether it binds on as_of: below), under
-- the policy in force on the penalty's decision date
CREATE OR REPLACE TEMP TABLE ban_windows AS
WITH cfg AS (
    SELECT as_of FROM params
), inclusive AS (
    SELECT t.policy_version, coalesce(TRY_CAST(kv.value AS BOOLEAN), true) AS until_inclusive
    FROM policy_timeline t
    LEFT JOIN policy_kv_by_version kv ON kv.policy_version = t.policy_version AND kv.key = 'measures.effect_until_inclusive'
), m AS (
    SELECT policy_version, matter, name, measure, department FROM policy_measures_by_version
), bans AS (
    SELECT policy_version, ban, matter, CAST(penalty_type AS VARCHAR) AS penalty_type, CAST(violation_code AS VARCHAR) AS violation_code,
           coalesce(TRY_CAST(min_accident_level AS INTEGER), 0) AS min_accident_level,
           CAST(until AS VARCHAR) AS until, TRY_CAST(years AS INTEGER) AS years,
           nullif(CAST(life_when_severity AS VARCHAR), '') AS life_when_severity,
           coalesce(TRY_CAST(principal_only AS BOOLEAN), false) AS principal_only,
           coalesce(CAST(scope AS VARCHAR), 'any') AS scope, basis,
           coalesce(TRY_CAST(unconfirmed AS BOOLEAN), false) AS basis_unconfirmed
    FROM policy_person_bans_by_version
), registry_at AS (   -- registry versions of accident units, for who and what they were when it occurred
    SELECT uscc, timezone('Asia/Shanghai', updated_at) AS local_at, principal_id_no,
           nullif(upper(replace(industry_code, ' ', '')), '') AS industry_code
    FROM k_enterprises
    WHERE op = 'upsert' AND uscc IN (SELECT unit_uscc FROM rules.accidents)
), person_penalties AS (
    -- principal_at_accident: the person was the accident unit's principal at the time (rules.md §3:
    -- named on the penalty, else on the accident, else the registry version in force when it occurred)
    SELECT 'D' || left(sha256(concat_ws('|', p.authority_code, p.decision_no)), 16) AS penalty_id,
           p.subject_id, p.subject_code, p.subject_name, p.penalty_types, p.violation_code, p.severity,
           p.decision_date, p.effect_until, p.decision_no, p.authority, p.authority_code,
           a.grade_level AS accident_level, coalesce(nullif(a.industry, ''), ra.industry_code) AS accident_industry,
           coalesce(p.subject_code = coalesce(p.principal_id_no, a.principal_id_no, ra.principal_id_no), false)
               AS principal_at_accident,
           coalesce(pt.policy_version, (SELECT policy_version FROM params)) AS policy_version
    FROM subjects.penalties p
    CROSS JOIN cfg
    LEFT JOIN rules.accidents a ON a.accident_no = p.accident_no
    ASOF LEFT JOIN registry_at ra ON ra.uscc = a.unit_uscc AND a.occurred_at >= ra.local_at
    ASOF LEFT JOIN policy_timeline pt ON p.decision_date >= pt.effective_from
    WHERE p.subject_type = 'person' AND NOT coalesce(p.revoked, false) AND p.decision_date <= cfg.as_of
)
SELECT 'ban' AS source, 'B' || left(sha256(concat_ws('|', p.penalty_id, x.ban)), 16) AS entry_id,
       NULL::VARCHAR AS regime, NULL::VARCHAR AS listing_basis, true AS decided,   -- the penalty itself decided it
       p.penalty_id, x.ban,
       'person' AS subject_type, p.subject_id, sc_mask(p.subject_code) AS subject_code, p.subject_name AS name,
       NULL::VARCHAR AS ground,
       x.matter, m.name AS measure_name, m.measure, m.department AS implementing_department, x.basis,
       x.basis_unconfirmed,
       CASE WHEN x.scope = 'industry' THEN p.accident_industry END AS scope_industry,
       p.decision_date AS restricted_from,
       CASE x.until
           WHEN 'effect_until' THEN p.effect_until + CASE WHEN i.until_inclusive THEN 1 ELSE 0 END
           WHEN 'years' THEN CASE WHEN p.severity IS NOT DISTINCT FROM x.life_when_severity AND x.life_when_severity IS NOT NULL
                                  THEN NULL ELSE CAST(p.decision_date + to_years(x.years) AS DATE) END
       END AS restricted_until,
       CASE x.until
           WHEN 'effect_until' THEN p.effect_until IS NULL
           WHEN 'life' THEN true
           WHEN 'years' THEN coalesce(p.severity = x.life_when_severity, false)
           ELSE false END AS for_life,
       'in_force' AS status, p.decision_no, p.authority, p.authority_code, p.policy_version
FROM person_penalties p
JOIN inclusive i ON i.policy_version = p.policy_version
JOIN bans x ON x.policy_version = p.policy_version
           AND (x.penalty_type = '*' OR list_contains(p.penalty_types, x.penalty_type))
           AND (x.violation_code = '*' OR x.violation_code = p.violation_code)
           AND coalesce(p.accident_level, 0) >= x.min_accident_level
           -- Art. 94 ¶3's life ban reaches the principal responsible, not everyone penalised
           AND (NOT x.principal_only OR p.principal_at_accident)
LEFT JOIN m ON m.policy_version = p.policy_version AND m.matter = x.matter;

-- The restrictions for every as_of, as intervals (rules/33_listing_timeline.sql): a listing's
-- measures bind while its entry is `listed` and inside the measure's own window; a ban binds inside
-- its window (valid_until NULL: for life). The API answers another as_of by filtering this table.
CREATE OR REPLACE TABLE rules.restriction_timeline AS
WITH from_listing AS (
    SELECT 'listing' AS source, t.entry_id, t.regime, t.basis AS listing_basis, t.decided,
           'D' || left(sha256(concat_ws('|', t.authority_code, t.decision_no)), 16) AS penalty_id, NULL::VARCHAR AS ban,
           t.subject_type, t.subject_id, t.subject_code, t.name, t.ground,
           m.matter, m.name AS measure_name, m.measure, m.department AS implementing_department, m.basis,
           m.basis_unconfirmed,
           NULL::VARCHAR AS scope_industry,
           t.start_date AS restricted_from,
           measure_until(m.duration, m.years, t.start_date, t.end_date) AS restricted_until,
           false AS for_life,
           t.status, t.decision_no, t.authority, t.authority_code,
           t.policy_version, t.valid_from AS listed_from, t.valid_until AS listed_until
    FROM rules.listing_timeline t
    JOIN listing_measures m ON m.policy_version = t.policy_version AND m.regime = t.regime AND measure_binds(m.applies_to, m.grounds, t.subject_type, t.ground)
    WHERE t.status = 'listed'
), unioned AS (
    SELECT * EXCLUDE (listed_from, listed_until),
           greatest(listed_from, restricted_from) AS valid_from, least(listed_until, restricted_until) AS valid_until
    FROM from_listing
    UNION ALL
    SELECT *, restricted_from, CASE WHEN NOT for_life THEN restricted_until END
    FROM ban_windows WHERE for_life OR restricted_from < restricted_until
)
-- policy_version: the policy the measure or ban was taken from (its decision's date), as on its entry
SELECT 'R' || left(sha256(concat_ws('|', u.source, u.entry_id, u.matter)), 16) AS restriction_id,
       u.* EXCLUDE (valid_from, valid_until), u.valid_from, u.valid_until
FROM unioned u
WHERE u.valid_until IS NULL OR u.valid_from < u.valid_until
ORDER BY u.entry_id, u.matter, u.valid_from;

-- what binds on the run's as_of: the timeline at that date
CREATE OR REPLACE TABLE rules.restrictions AS
SELECT t.* EXCLUDE (valid_from, valid_until), p.as_of
FROM rules.restriction_timeline t CROSS JOIN params p
WHERE t.valid_from <= p.as_of AND (t.valid_until IS NULL OR p.as_of < t.valid_until);
