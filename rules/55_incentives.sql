-- 守信联合激励 (rules.md §4, §6) as of params.as_of: rules.incentives, one row per registry unit,
-- what GET /v1/incentives/{uscc} answers.
--   eligible     rules.credit_scores.incentive_eligible: the 守信 conditions of 安监总办〔2017〕133号
--                (credit.yaml), none that the data can check unmet
--   conditions   every condition with its status met / not_met / not_checked, and the codes of the
--                unmet and unchecked ones, so an answer says what was and was not checked
--   incentives   the catalogue (policy table `incentives`, each with its basis and `unconfirmed`)
--                for an eligible unit, else empty
CREATE OR REPLACE TABLE rules.incentives AS
WITH catalogue AS (
    SELECT list({incentive: incentive, name: name, measure: measure, department: department, basis: basis,
                 unconfirmed: coalesce(TRY_CAST(unconfirmed AS BOOLEAN), false)} ORDER BY rowid) AS items
    FROM policy_incentives
)
SELECT cs.uscc, cs.name, cs.incentive_eligible AS eligible, cs.grade AS credit_grade,
       cs.incentive_conditions AS conditions,
       list_transform(list_filter(cs.incentive_conditions, lambda x: x.status = 'not_met'), lambda x: x.condition) AS conditions_not_met,
       list_transform(list_filter(cs.incentive_conditions, lambda x: x.status = 'not_checked'), lambda x: x.condition) AS conditions_not_checked,
       CASE WHEN cs.incentive_eligible THEN coalesce(k.items, []) ELSE [] END AS incentives,
       cs.policy_version, cs.as_of
FROM rules.credit_scores cs
CROSS JOIN catalogue k;
