-- Publication of administrative penalties (双公示; rules.md §5).
--
-- rules.penalty_publicity: every penalty decision decided on or before as_of (revoked ones too,
-- flagged) with its regime, class and publication window, for explain and tests.
--   regime  the publicity regime in force on the decision date (policy publicity/<regime>/:
--           发改办财金〔2019〕527号, 令第58号, 令第36号; the latest effective_from not after the
--           decision date, the earliest regime for a decision older than all of them). Its own class
--           table, type map, fine thresholds and 安全生产 minimum apply: a 2025 decision keeps 令第58号.
--   class   the highest of: each 处罚类别's class (the regime's publicity_types; an unknown type →
--           publicity.unknown_type_class, no type at all → publicity.no_type_class) and the fine's
--           class (publicity_fines: thresholds per subject type in 万元, `above` = strictly above).
--           Class ranks order the periods, so "with several types the longest period wins".
--   window  [decision_date, window_end), publicity_until = window_end − 1 day (the last day shown):
--           min/max months of the class; a 安全生产 penalty (decided by a department of a kind in
--           publicity_safety_kinds, or carrying an AQ_WFDM code) keeps at least the regime's
--           safety_min_months (classes with safety_min = true, when publicity.safety_min_enabled);
--           any other penalty (e.g. a 市场监管 one without a code) only the class minimum. Without a
--           department 公示截止期 (CF_GSJZQ) the class's default_months, with one (and
--           honour_department) that date kept within [min, max].
--   repair  a 公示修复 credit action (matched by decision number and subject code, effective on or
--           before as_of) ends the window on its date, never before the minimum, and only once the
--           penalty is performed (its AQ_ZXZT in publicity_performed_statuses: 已执行 or 强制执行);
--           a repair of an unperformed penalty is kept visible (repair_blocked) and not applied.
-- rules.penalties_public: the 双公示 fields of the non-revoked decisions inside their window on
-- as_of. Person ID numbers are masked (all but the last 4). penalty_id = hash of the deciding
-- authority's code and the decision number: stable across runs and versions.
CREATE OR REPLACE TABLE rules.penalty_publicity AS
WITH regimes AS (
    SELECT CAST(regime AS VARCHAR) AS regime, CAST(effective_from AS DATE) AS effective_from,
           CAST(basis AS VARCHAR) AS regime_basis, coalesce(CAST(safety_min_months AS INTEGER), 0) AS safety_months
    FROM policy_publicity_regimes
), cls AS (
    SELECT CAST(regime AS VARCHAR) AS regime, CAST(class AS VARCHAR) AS class, CAST(rank AS INTEGER) AS rank,
           CAST(min_months AS INTEGER) AS min_months, CAST(max_months AS INTEGER) AS max_months,
           CAST(default_months AS INTEGER) AS default_months,
           coalesce(TRY_CAST(honour_department AS BOOLEAN), false) AS honour_department,
           coalesce(TRY_CAST(safety_min AS BOOLEAN), false) AS safety_min
    FROM policy_publicity_classes
), cfg AS (
    SELECT as_of, policy_version,
           coalesce(TRY_CAST(pol('publicity.safety_min_enabled') AS BOOLEAN), true) AS safety_on,  -- rules.md §5 default
           coalesce(TRY_CAST(pol('publicity.safety_by_violation_code') AS BOOLEAN), true) AS safety_by_code,
           (SELECT list(DISTINCT CAST(kind AS VARCHAR)) FROM policy_publicity_safety_kinds) AS safety_kinds,
           (SELECT list(DISTINCT CAST(execution_status AS VARCHAR)) FROM policy_publicity_performed_statuses) AS performed,
           (SELECT min(effective_from) FROM regimes) AS first_regime_from
    FROM params
), regime_ranks AS (   -- per regime: 处罚类别 → rank, fine thresholds per subject type, fallback ranks
    SELECT r.regime,
           (SELECT map_from_entries(list((CAST(t.penalty_type AS VARCHAR), c.rank)))
              FROM policy_publicity_types t JOIN cls c ON c.regime = t.regime AND c.class = t.class
              WHERE t.regime = r.regime) AS type_ranks,
           (SELECT map_from_entries(list((subject_type, fines))) FROM (
                SELECT CAST(f.subject_type AS VARCHAR) AS subject_type,
                       list({'min': CAST(f.min_fine_wan AS DECIMAL(18, 4)),
                             'above': coalesce(TRY_CAST(f.above AS BOOLEAN), false), 'rank': c.rank}) AS fines
                FROM policy_publicity_fines f JOIN cls c ON c.regime = f.regime AND c.class = f.class
                WHERE f.regime = r.regime GROUP BY ALL)) AS fine_ranks,
           (SELECT rank FROM cls WHERE cls.regime = r.regime AND class = pol('publicity.unknown_type_class')) AS unknown_rank,
           (SELECT rank FROM cls WHERE cls.regime = r.regime AND class = pol('publicity.no_type_class')) AS no_type_rank
    FROM regimes r
), repairs AS (   -- 公示修复 in force by as_of: the earliest per (decision, subject)
    SELECT c.decision_no, c.subject_code, min(c.effective_date) AS repair_date,
           arg_min(c.department || '/' || c.record_id, c.effective_date) AS repair_record
    FROM k_credit_actions_current c CROSS JOIN cfg
    WHERE c.action_type = '公示修复' AND c.effective_date <= cfg.as_of
    GROUP BY ALL
), decided AS (
    SELECT p.department, p.record_id, p.authority_code, p.decision_no, p.subject_id, p.subject_code,
           p.decision_date, p.revoked, p.penalty_types, p.fine_wan, p.violation_code, p.publicity_until,
           p.execution_status,
           coalesce(p.subject_type, CASE WHEN coalesce(p.penalised_party, '') = '个人'
                                           OR coalesce(p.subject_category, '') = '自然人' THEN 'person' ELSE 'unit' END) AS stype,
           coalesce(list_contains(cfg.safety_kinds, dk.kind), false)
             OR (cfg.safety_by_code AND p.violation_code IS NOT NULL) AS is_safety,
           greatest(p.decision_date, cfg.first_regime_from) AS regime_day
    FROM subjects.penalties p CROSS JOIN cfg
    LEFT JOIN rules.department_settings dk ON dk.department = p.department
    WHERE p.decision_date <= cfg.as_of
), d AS (   -- the regime in force on the decision date (the earliest for older decisions)
    SELECT x.*, rg.regime, rg.regime_basis, rg.safety_months
    FROM decided x ASOF JOIN regimes rg ON x.regime_day >= rg.effective_from
), ranked AS (
    SELECT d.*,
           CASE WHEN len(coalesce(d.penalty_types, [])) = 0 THEN rr.no_type_rank
                ELSE list_max(list_transform(d.penalty_types, lambda t: coalesce(rr.type_ranks[t], rr.unknown_rank))) END AS type_rank,
           list_max(list_transform(list_filter(coalesce(rr.fine_ranks[d.stype], []),
                                               lambda f: CASE WHEN f.above THEN coalesce(d.fine_wan, 0) > f.min
                                                              ELSE coalesce(d.fine_wan, 0) >= f.min END),
                                   lambda f: f.rank)) AS fine_rank
    FROM d JOIN regime_ranks rr ON rr.regime = d.regime
), classed AS (
    SELECT r.*, c.class, c.honour_department,
           tc.class AS type_class, fc.class AS fine_class,
           cfg.safety_on AND r.is_safety AND c.safety_min AND r.safety_months > 0 AS safety_min_applied,
           CASE WHEN cfg.safety_on AND r.is_safety AND c.safety_min THEN greatest(c.min_months, r.safety_months)
                ELSE c.min_months END AS min_m,
           c.max_months, c.default_months
    FROM ranked r CROSS JOIN cfg
    LEFT JOIN cls c ON c.regime = r.regime AND c.rank = greatest(coalesce(r.type_rank, 0), coalesce(r.fine_rank, 0))   -- no class: never shown
    LEFT JOIN cls tc ON tc.regime = r.regime AND tc.rank = r.type_rank
    LEFT JOIN cls fc ON fc.regime = r.regime AND fc.rank = r.fine_rank
), months AS (
    SELECT *, greatest(max_months, min_m) AS max_m,
           CASE WHEN default_months <= 0 THEN 0 ELSE least(greatest(default_months, min_m), greatest(max_months, min_m)) END AS default_m
    FROM classed
), windows AS (
    SELECT m.*, rp.repair_date, rp.repair_record,
           coalesce(list_contains(cfg.performed, m.execution_status), false) AS performed,
           CAST(m.decision_date + to_months(m.min_m) AS DATE) AS min_end,
           CAST(m.decision_date + to_months(m.max_m) AS DATE) AS max_end,
           CASE WHEN m.honour_department AND m.publicity_until IS NOT NULL AND m.max_m > 0
                THEN least(greatest(m.publicity_until + 1, CAST(m.decision_date + to_months(m.min_m) AS DATE)),
                           CAST(m.decision_date + to_months(m.max_m) AS DATE))
                ELSE CAST(m.decision_date + to_months(m.default_m) AS DATE) END AS base_end
    FROM months m CROSS JOIN cfg
    LEFT JOIN repairs rp ON rp.decision_no = m.decision_no AND rp.subject_code = m.subject_code
), ends AS (
    SELECT *,
           CASE WHEN repair_date IS NULL OR NOT performed THEN base_end
                ELSE least(base_end, greatest(repair_date, min_end)) END AS window_end
    FROM windows
)
SELECT 'D' || left(sha256(concat_ws('|', e.authority_code, e.decision_no)), 16) AS penalty_id,
       e.department, e.record_id, e.authority_code, e.decision_no,
       e.stype AS subject_type, e.subject_id, e.decision_date, coalesce(e.revoked, false) AS revoked,
       e.regime AS publicity_regime, e.regime_basis AS publicity_basis,
       e.type_class, e.fine_class, e.class AS publicity_class,
       e.is_safety, e.safety_min_applied, e.min_m AS min_months, e.max_m AS max_months,
       e.publicity_until AS department_until,
       e.min_end, e.max_end, e.base_end,
       e.execution_status, e.repair_date, e.repair_record,
       e.repair_date IS NOT NULL AND NOT e.performed AS repair_blocked,
       e.repair_date IS NOT NULL AND e.performed AND e.window_end < e.base_end AS repair_applied,
       e.window_end,
       CASE WHEN e.window_end > e.decision_date THEN CAST(e.window_end - 1 AS DATE) END AS publicity_until,
       coalesce(e.window_end > e.decision_date, false) AS published,
       coalesce(NOT coalesce(e.revoked, false) AND e.decision_date <= cfg.as_of AND cfg.as_of < e.window_end, false) AS in_window,
       cfg.policy_version, cfg.as_of
FROM ends e CROSS JOIN cfg;

CREATE OR REPLACE TABLE rules.penalties_public AS
SELECT pp.penalty_id,
       pp.subject_type, p.subject_id,
       CASE WHEN pp.subject_type = 'person' THEN sc_mask(coalesce(p.person_id_no, p.subject_code))
            ELSE coalesce(p.subject_code, p.uscc) END AS subject_code,
       p.subject_name AS name, p.subject_category,
       CASE WHEN pp.subject_type = 'person' THEN p.person_id_type END AS id_type,
       CASE WHEN pp.subject_type = 'unit' THEN p.legal_rep END AS legal_representative,
       p.decision_no, p.violation_type, p.facts, p.basis, p.penalty_types, p.content,
       p.fine_wan, p.confiscated_wan, p.licence_affected,
       p.decision_date, p.effect_until,
       p.authority, p.authority_code,
       p.source_unit AS data_source, p.source_unit_code AS data_source_code,
       pp.publicity_class, pp.publicity_basis, pp.decision_date AS publicity_start, pp.publicity_until,
       p.department AS source_department,
       pp.policy_version, pp.as_of
FROM rules.penalty_publicity pp
JOIN subjects.penalties p ON p.department = pp.department AND p.record_id = pp.record_id
WHERE pp.in_window;
