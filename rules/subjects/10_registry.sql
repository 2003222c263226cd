-- The supervised-enterprise registry as the rules see it: one row per USCC (latest version),
-- plus a name index over current and former names for resolving records without a usable code.
CREATE SCHEMA IF NOT EXISTS subjects;

-- names compare after: half-width, no spaces, one kind of bracket, 有限责任公司 ≡ 有限公司
CREATE OR REPLACE MACRO sc_name_key(s) AS
    nullif(replace(replace(replace(replace(regexp_replace(sc_half(s), '\s+', '', 'g'),
        '〔', '('), '〕', ')'), '有限责任公司', '有限公司'), '股份有限公司', '股份公司'), '');

-- the latest version in force per USCC, chosen on the keys and joined back by row id (a window over
-- the registry's full width sorted every column of every unit)
CREATE OR REPLACE TABLE subjects.registry AS
SELECT e.* FROM staged.enterprises e
SEMI JOIN (SELECT f.rid FROM k_enterprises_in_force f JOIN (SELECT rowid AS rid, uscc FROM staged.enterprises) u USING (rid)
           QUALIFY row_number() OVER (PARTITION BY u.uscc ORDER BY f.updated_at DESC, f.department) = 1) p
       ON p.rid = e.rowid;

-- The keys are made once (materialised: a filter on name_key pushed into the scan made every key
-- twice) and the distinct (key, unit) pairs counted by one GROUP BY, not count(DISTINCT) beside
-- min() (two aggregates over the keys joined back): half the statement's cost (issue 10 §3).
CREATE OR REPLACE TABLE subjects.name_index AS
WITH keys AS MATERIALIZED (
    SELECT sc_name_key(name) AS name_key, uscc FROM subjects.registry
    UNION ALL
    SELECT sc_name_key(unnest(former_names)), uscc FROM subjects.registry
)
SELECT name_key, min(uscc) AS uscc, count(*) AS candidates
FROM (SELECT DISTINCT name_key, uscc FROM keys WHERE name_key IS NOT NULL)
GROUP BY name_key;
