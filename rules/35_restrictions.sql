-- Joint punishment (联合惩戒) in force on params.as_of: rules.md §4, exchange.md §2.
--
-- rules.restrictions holds one row per restriction that binds on as_of, nothing else: the API
-- answers "restricted" for (code, matter) when a row exists, with restricted_until from it.
-- Each row carries its measure's own legal basis from the policy (measures.basis, or the ban's),
-- and basis_unconfirmed where the policy marks that basis `unconfirmed` (rules.md §4).
--   source = 'listing'  one row per `listed` entry of rules.blacklist × measure of the policy
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
CREATE OR REPLACE TABLE rules.restrictions AS
WITH cfg AS (
    SELECT as_of, policy_version,
           coalesce(TRY_CAST(pol('measures.effect_until_inclusive') AS BOOLEAN), true) AS until_inclusive
    FROM params
), m AS (
    SELECT matter, name, measure, department, basis, coalesce(TRY_CAST(unconfirmed AS BOOLEAN), false) AS basis_unconfirmed,
           applies_to,
           coalesce(TRY_CAST(on_listing AS BOOLEAN), true) AS on_listing,
           string_split(replace(coalesce(CAST(grounds AS VARCHAR), '*'), ' ', ''), ',') AS grounds,
           coalesce(CAST(duration AS VARCHAR), 'listing') AS duration,
           TRY_CAST(years AS INTEGER) AS years
    FROM policy_measures
), from_listing AS (
    SELECT 'listing' AS source, b.entry_id, b.regime, b.basis AS listing_basis, b.decided,
           'D' || left(sha256(concat_ws('|', b.authority_code, b.decision_no)), 16) AS penalty_id, NULL::VARCHAR AS ban,
           b.subject_type, b.subject_id, b.subject_code, b.name, b.ground,
           m.matter, m.name AS measure_name, m.measure, m.department AS implementing_department, m.basis,
           m.basis_unconfirmed,
           NULL::VARCHAR AS scope_industry,
           b.start_date AS restricted_from,
           CASE WHEN m.duration = 'years' THEN CAST(b.start_date + to_years(m.years) AS DATE)
                ELSE b.end_date END AS restricted_until,
           false AS for_life,
           b.status, b.decision_no, b.authority, b.authority_code
    FROM rules.blacklist b
    JOIN m ON m.on_listing AND m.applies_to IN (b.subject_type, 'both')
          AND (list_contains(m.grounds, '*') OR list_contains(m.grounds, b.ground))
    -- the measures of the entry's regime (regimes.yaml: '*' = every matter)
    JOIN (SELECT regime, string_split(replace(coalesce(CAST(measures AS VARCHAR), '*'), ' ', ''), ',') AS matters
          FROM policy_regimes) rm
      ON rm.regime = b.regime AND (list_contains(rm.matters, '*') OR list_contains(rm.matters, m.matter))
    WHERE b.status = 'listed'
), bans AS (
    SELECT ban, matter, CAST(penalty_type AS VARCHAR) AS penalty_type, CAST(violation_code AS VARCHAR) AS violation_code,
           coalesce(TRY_CAST(min_accident_level AS INTEGER), 0) AS min_accident_level,
           CAST(until AS VARCHAR) AS until, TRY_CAST(years AS INTEGER) AS years,
           nullif(CAST(life_when_severity AS VARCHAR), '') AS life_when_severity,
           coalesce(TRY_CAST(principal_only AS BOOLEAN), false) AS principal_only,
           coalesce(CAST(scope AS VARCHAR), 'any') AS scope, basis,
           coalesce(TRY_CAST(unconfirmed AS BOOLEAN), false) AS basis_unconfirmed
    FROM policy_person_bans
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
               AS principal_at_accident
    FROM subjects.penalties p
    CROSS JOIN cfg
    LEFT JOIN rules.accidents a ON a.accident_no = p.accident_no
    ASOF LEFT JOIN registry_at ra ON ra.uscc = a.unit_uscc AND a.occurred_at >= ra.local_at
    WHERE p.subject_type = 'person' AND NOT coalesce(p.revoked, false) AND p.decision_date <= cfg.as_of
), from_bans AS (
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
               WHEN 'effect_until' THEN p.effect_until + CASE WHEN cfg.until_inclusive THEN 1 ELSE 0 END
               WHEN 'years' THEN CASE WHEN p.severity IS NOT DISTINCT FROM x.life_when_severity AND x.life_when_severity IS NOT NULL
                                      THEN NULL ELSE CAST(p.decision_date + to_years(x.years) AS DATE) END
           END AS restricted_until,
           CASE x.until
               WHEN 'effect_until' THEN p.effect_until IS NULL
               WHEN 'life' THEN true
               WHEN 'years' THEN coalesce(p.severity = x.life_when_severity, false)
               ELSE false END AS for_life,
           'in_force' AS status, p.decision_no, p.authority, p.authority_code
    FROM person_penalties p
    CROSS JOIN cfg
    JOIN bans x ON (x.penalty_type = '*' OR list_contains(p.penalty_types, x.penalty_type))
               AND (x.violation_code = '*' OR x.violation_code = p.violation_code)
               AND coalesce(p.accident_level, 0) >= x.min_accident_level
               -- Art. 94 ¶3's life ban reaches the principal responsible, not everyone penalised
               AND (NOT x.principal_only OR p.principal_at_accident)
    LEFT JOIN m ON m.matter = x.matter
), unioned AS (
    SELECT * FROM from_listing UNION ALL SELECT * FROM from_bans
)
SELECT 'R' || left(sha256(concat_ws('|', u.source, u.entry_id, u.matter)), 16) AS restriction_id,
       u.*, cfg.policy_version, cfg.as_of
FROM unioned u CROSS JOIN cfg
WHERE u.restricted_from <= cfg.as_of
  AND (u.for_life OR cfg.as_of < u.restricted_until);
