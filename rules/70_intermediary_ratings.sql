-- Safety service agency ratings (安全生产技术服务机构信用评定; rules.md §8).
--
-- rules.agency_ratings_latest: per agency (JG_DM) the rating of its latest period rated on or
-- before as_of (ties: latest rating date, latest version, then department and record id).
-- rules.agency_red_triggers: one row per red trigger our data shows, with the record behind it:
--   fraud_penalty          an AGENCY_FRAUD penalty on the agency, not revoked, decided less than
--                          agencies.fraud_penalty_lookback_months before as_of
--   listing                a `listed` entry of the agency under agencies.listing_ground (B2)
--   qualification_expired  JG_ZZYXQ (last valid day) before as_of
--   rating_violation       the rating's PJ_WGQX names a violation of policy table agency_red_violations
-- rules.intermediary_ratings: one row per agency: the department's band PJ_DJ (derived from PJ_DF
-- by policy table agency_bands when absent), published as agencies.red_band when a red trigger
-- shows; the triggers as a list of records, and the blacklist entries they link.
CREATE OR REPLACE TABLE rules.agency_ratings_latest AS
SELECT r.*
FROM k_intermediary_ratings_current r
WHERE coalesce(r.rating_date, CAST(timezone('Asia/Shanghai', r.updated_at) AS DATE)) <= (SELECT as_of FROM params)
  AND r.agency_uscc IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY r.agency_uscc
                           ORDER BY r.period DESC NULLS LAST, r.rating_date DESC NULLS LAST, r.updated_at DESC,
                                    r.department, r.record_id) = 1;

CREATE OR REPLACE TABLE rules.agency_red_triggers AS
WITH cfg AS (
    SELECT as_of,
           coalesce(TRY_CAST(pol('agencies.red_on_fraud_penalty') AS BOOLEAN), true) AS on_fraud,
           CAST(as_of - to_months(coalesce(TRY_CAST(pol('agencies.fraud_penalty_lookback_months') AS INTEGER), 36)) AS DATE) AS fraud_after,
           coalesce(TRY_CAST(pol('agencies.red_on_listing') AS BOOLEAN), true) AS on_listing,
           coalesce(pol('agencies.listing_ground'), 'B2') AS listing_ground,
           coalesce(TRY_CAST(pol('agencies.red_on_expired_qualification') AS BOOLEAN), true) AS on_expired,
           coalesce(TRY_CAST(pol('agencies.red_on_violations') AS BOOLEAN), true) AS on_violations
    FROM params
), ag AS (
    SELECT agency_uscc, department, record_id, certificate_no, qualification_until, violations, rating_date
    FROM rules.agency_ratings_latest
), t AS (
    SELECT ag.agency_uscc, 'fraud_penalty' AS trigger, 'penalties' AS source,
           p.department AS source_department, p.record_id AS source_record_id,
           p.decision_no AS reference, p.decision_date AS trigger_date, NULL::VARCHAR AS entry_id
    FROM ag
    JOIN subjects.penalties p ON p.subject_type = 'unit' AND p.subject_id = ag.agency_uscc
    CROSS JOIN cfg
    WHERE cfg.on_fraud AND p.violation_code = 'AGENCY_FRAUD' AND NOT coalesce(p.revoked, false)
      AND p.decision_date <= cfg.as_of AND p.decision_date > cfg.fraud_after
    UNION ALL
    SELECT ag.agency_uscc, 'listing', 'blacklist', b.source_department, b.source_record_id,
           b.decision_no, b.start_date, b.entry_id
    FROM ag
    JOIN rules.blacklist b ON b.subject_type = 'unit' AND b.subject_id = ag.agency_uscc
    CROSS JOIN cfg
    WHERE cfg.on_listing AND b.ground = cfg.listing_ground AND b.status = 'listed'
    UNION ALL
    SELECT ag.agency_uscc, 'qualification_expired', 'intermediary_ratings', ag.department, ag.record_id,
           ag.certificate_no, ag.qualification_until, NULL
    FROM ag CROSS JOIN cfg
    WHERE cfg.on_expired AND ag.qualification_until < cfg.as_of
    UNION ALL
    SELECT v.agency_uscc, 'rating_violation', 'intermediary_ratings', v.department, v.record_id,
           v.violation, v.rating_date, NULL
    FROM (SELECT ag.*, unnest(ag.violations) AS violation FROM ag) v
    JOIN policy_agency_red_violations rv ON CAST(rv.violation AS VARCHAR) = v.violation
    CROSS JOIN cfg
    WHERE cfg.on_violations
)
SELECT DISTINCT * FROM t;

CREATE OR REPLACE TABLE rules.intermediary_ratings AS
WITH cfg AS (
    SELECT as_of, policy_version, coalesce(pol('agencies.red_band'), '红') AS red_band FROM params
), bands AS (
    SELECT CAST(band AS VARCHAR) AS band, CAST(min_score AS DECIMAL(18, 4)) AS min_score FROM policy_agency_bands
), derived AS (
    SELECT a.agency_uscc, arg_max(b.band, b.min_score) AS score_band
    FROM rules.agency_ratings_latest a JOIN bands b ON a.score >= b.min_score
    GROUP BY a.agency_uscc
), trig AS (
    SELECT agency_uscc,
           list({'trigger': trigger, 'source': source, 'source_department': source_department,
                 'source_record_id': source_record_id, 'reference': reference, 'date': trigger_date,
                 'entry_id': entry_id}
                ORDER BY trigger, source_department, source_record_id, reference, entry_id) AS red_triggers,
           list_sort(list_distinct(list(entry_id))) AS linked_entry_ids
    FROM rules.agency_red_triggers GROUP BY agency_uscc
)
SELECT a.agency_uscc AS uscc, a.agency_name AS name, a.qualification_type, a.certificate_no, a.qualification_until,
       a.period, a.score,
       a.band AS department_band, d.score_band,
       CASE WHEN a.band IS NOT NULL THEN 'department' WHEN d.score_band IS NOT NULL THEN 'score' END AS band_source,
       CASE WHEN t.agency_uscc IS NOT NULL THEN cfg.red_band ELSE coalesce(a.band, d.score_band) END AS band,
       t.agency_uscc IS NOT NULL AS red_by_trigger,
       coalesce(t.red_triggers, []) AS red_triggers,
       coalesce(t.linked_entry_ids, []) AS linked_entry_ids,
       a.violations, a.rating_authority, a.rating_date,
       a.department AS source_department, a.record_id AS source_record_id,
       cfg.policy_version, cfg.as_of
FROM rules.agency_ratings_latest a
CROSS JOIN cfg
LEFT JOIN derived d ON d.agency_uscc = a.agency_uscc
LEFT JOIN trig t ON t.agency_uscc = a.agency_uscc;
