-- The supervised-enterprise registry as the rules see it: one row per USCC (latest version),
-- plus a name index over current and former names for resolving records without a usable code.
CREATE SCHEMA IF NOT EXISTS subjects;

-- names compare after: half-width, no spaces, one kind of bracket, 有限责任公司 ≡ 有限公司
CREATE OR REPLACE MACRO sc_name_key(s) AS
    nullif(replace(replace(replace(replace(regexp_replace(sc_half(s), '\s+', '', 'g'),
        '〔', '('), '〕', ')'), '有限责任公司', '有限公司'), '股份有限公司', '股份公司'), '');

CREATE OR REPLACE TABLE subjects.registry AS
SELECT * FROM k_enterprises_current
QUALIFY row_number() OVER (PARTITION BY uscc ORDER BY updated_at DESC, department) = 1;

CREATE OR REPLACE TABLE subjects.name_index AS
SELECT name_key, min(uscc) AS uscc, count(DISTINCT uscc) AS candidates
FROM (
    SELECT sc_name_key(name) AS name_key, uscc FROM subjects.registry
    UNION ALL
    SELECT sc_name_key(unnest(former_names)), uscc FROM subjects.registry
) WHERE name_key IS NOT NULL
GROUP BY name_key;
