-- The supervised-enterprise registry as the rules see it: one row per USCC (latest version).
CREATE OR REPLACE TABLE rules.registry AS
SELECT * FROM staged.enterprises_current
QUALIFY row_number() OVER (PARTITION BY uscc ORDER BY updated_at DESC, department) = 1;
