//! The quota options of `orgs|teams|users|keys create|update`: `--rpm`, `--tpm`,
//! `--max-concurrent` and `--budget PERIOD:USD[:ALERTS][:soft]` (repeatable), and on update
//! `--clear-limits` and `--clear-budgets`. This module owns the budget grammar (parsed and
//! printed the same way, so a budget `show` prints can be pasted back), the body fields the
//! options make, and the table cells of `limits` and `budgets`.
//!
//! On update, the options change what they name and keep the rest: a limit replaces that limit,
//! a budget the budget of its period. The API replaces `limits` and `budgets` as a whole, so the
//! object is read first and the options applied to what it holds.

use clap::Args;
use portcullis_types::limits::validate_budgets;
use portcullis_types::{BudgetPeriod, BudgetSpec, LimitRules};
use serde_json::{Map, Value};

/// The help of `--budget`, shared by every command that takes it.
const BUDGET_HELP: &str = "A money budget (repeat, one per period): PERIOD:USD[:ALERTS][:soft]. \
PERIOD is daily, weekly, monthly (calendar periods in UTC) or total (never resets); USD the most \
spent per period, in US dollars; ALERTS the percentages of it (ascending, comma-separated) at \
which an alert is raised; soft only raises the alerts, where the default (hard) refuses requests \
that would go over. E.g. --budget monthly:100:50,80 --budget daily:10::soft";

/// Limits and budgets to set.
#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt and completion).
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u64>,
    #[arg(
        long = "budget",
        value_name = "PERIOD:USD[:ALERTS][:soft]",
        value_parser = parse_budget,
        help = BUDGET_HELP
    )]
    pub budgets: Vec<BudgetSpec>,
}

impl QuotaArgs {
    fn limits_given(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.max_concurrent.is_some()
    }

    /// The given limits over `base`.
    fn limits_over(&self, base: LimitRules) -> LimitRules {
        LimitRules {
            rpm: self.rpm.or(base.rpm),
            tpm: self.tpm.or(base.tpm),
            max_concurrent: self.max_concurrent.or(base.max_concurrent),
        }
    }

    /// The given budgets, each replacing the one of its period in `base` (or added).
    fn budgets_over(&self, mut base: Vec<BudgetSpec>) -> Result<Vec<BudgetSpec>, String> {
        validate_budgets(&self.budgets).map_err(|e| format!("--budget: {e}"))?;
        for budget in &self.budgets {
            match base.iter_mut().find(|b| b.period == budget.period) {
                Some(old) => *old = budget.clone(),
                None => base.push(budget.clone()),
            }
        }
        Ok(base)
    }

    /// Adds the `limits` and `budgets` of a new object to its body (those given only).
    pub fn add_to(&self, body: &mut Value) -> Result<(), String> {
        if self.limits_given() {
            body["limits"] = json(&self.limits_over(LimitRules::default()))?;
        }
        if !self.budgets.is_empty() {
            body["budgets"] = json(&self.budgets_over(Vec::new())?)?;
        }
        Ok(())
    }
}

/// Limits and budgets to change on update.
#[derive(Debug, Args)]
pub struct QuotaUpdateArgs {
    #[command(flatten)]
    pub set: QuotaArgs,
    /// Remove every rate limit (before setting those given, if any).
    #[arg(long)]
    pub clear_limits: bool,
    /// Remove every budget (before setting those given, if any).
    #[arg(long)]
    pub clear_budgets: bool,
}

impl QuotaUpdateArgs {
    /// Whether the object's current quotas must be read first: some are kept.
    pub fn needs_current(&self) -> bool {
        (self.set.limits_given() && !self.clear_limits)
            || (!self.set.budgets.is_empty() && !self.clear_budgets)
    }

    /// Adds the changed `limits` and `budgets` to an update's body, applied to the object as
    /// `current` holds it (read when [`needs_current`](Self::needs_current)).
    pub fn add_to(
        &self,
        current: Option<&Value>,
        body: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let field = |name: &str| current.map_or(Value::Null, |c| c[name].clone());
        if self.clear_limits || self.set.limits_given() {
            let base = if self.clear_limits {
                LimitRules::default()
            } else {
                from_answer(field("limits"), "limits")?
            };
            body.insert("limits".into(), json(&self.set.limits_over(base))?);
        }
        if self.clear_budgets || !self.set.budgets.is_empty() {
            let base = if self.clear_budgets {
                Vec::new()
            } else {
                from_answer(field("budgets"), "budgets")?
            };
            body.insert("budgets".into(), json(&self.set.budgets_over(base)?)?);
        }
        Ok(())
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// A field of the gateway's answer; absent (an older gateway) is the empty value.
fn from_answer<T: serde::de::DeserializeOwned + Default>(
    value: Value,
    name: &str,
) -> Result<T, String> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(value).map_err(|e| format!("the gateway's {name} are unreadable: {e}"))
}

/// Parses `PERIOD:USD[:ALERTS][:soft|hard]` (see `BUDGET_HELP`); `PERIOD:USD:soft` may leave
/// out the empty alerts.
pub fn parse_budget(text: &str) -> Result<BudgetSpec, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (period, usd, alerts, mode) = match parts.as_slice() {
        [period, usd] => (*period, *usd, "", None),
        [period, usd, mode @ ("soft" | "hard")] => (*period, *usd, "", Some(*mode)),
        [period, usd, alerts] => (*period, *usd, *alerts, None),
        [period, usd, alerts, mode] => (*period, *usd, *alerts, Some(*mode)),
        _ => return Err("expected PERIOD:USD[:ALERTS][:soft], e.g. monthly:100:50,80".into()),
    };
    let period = match period {
        "daily" => BudgetPeriod::Daily,
        "weekly" => BudgetPeriod::Weekly,
        "monthly" => BudgetPeriod::Monthly,
        "total" => BudgetPeriod::Total,
        other => {
            return Err(format!(
                "unknown period '{other}': daily, weekly, monthly or total"
            ));
        }
    };
    let max_usd: f64 = usd
        .parse()
        .map_err(|_| format!("'{usd}' is not an amount in US dollars (such as 100 or 12.50)"))?;
    let hard = match mode {
        None | Some("hard") => true,
        Some("soft") => false,
        Some(other) => return Err(format!("'{other}' is not soft or hard")),
    };
    let alerts = alerts
        .split(',')
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<u8>()
                .map_err(|_| format!("alert '{a}' is not a percentage from 1 to 100"))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    let budget = BudgetSpec {
        max_usd,
        period,
        alerts,
        hard,
    };
    budget.validate()?;
    Ok(budget)
}

/// A budget in the grammar `--budget` takes.
pub fn format_budget(b: &BudgetSpec) -> String {
    let mut text = format!("{}:{}", b.period, b.max_usd);
    if !b.alerts.is_empty() || !b.hard {
        let alerts: Vec<String> = b.alerts.iter().map(u8::to_string).collect();
        text = format!("{text}:{}", alerts.join(","));
    }
    if !b.hard {
        text.push_str(":soft");
    }
    text
}

/// The table cell of a `limits` field: `rpm=60,tpm=90000,max_concurrent=4`, `-` for none.
pub fn limits_cell(value: &Value) -> Option<String> {
    let limits: LimitRules = serde_json::from_value(value.clone()).ok()?;
    let set: Vec<String> = [
        ("rpm", limits.rpm),
        ("tpm", limits.tpm),
        ("max_concurrent", limits.max_concurrent),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| format!("{name}={v}")))
    .collect();
    Some(if set.is_empty() {
        "-".to_owned()
    } else {
        set.join(",")
    })
}

/// The table cell of a `budgets` field, each as `--budget` takes it: `monthly:100:50,80
/// daily:10::soft`, `-` for none.
pub fn budgets_cell(value: &Value) -> Option<String> {
    let budgets: Vec<BudgetSpec> = serde_json::from_value(value.clone()).ok()?;
    Some(if budgets.is_empty() {
        "-".to_owned()
    } else {
        budgets
            .iter()
            .map(format_budget)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde_json::json;

    use super::*;

    fn args(rpm: Option<u64>, tpm: Option<u64>, budgets: &[&str]) -> QuotaArgs {
        QuotaArgs {
            rpm,
            tpm,
            max_concurrent: None,
            budgets: budgets.iter().map(|b| parse_budget(b).unwrap()).collect(),
        }
    }

    #[test]
    fn budgets_parse_and_print_in_one_grammar() {
        let b = parse_budget("monthly:100:50,80").unwrap();
        assert_eq!(
            (b.period, b.max_usd, b.alerts.as_slice(), b.hard),
            (BudgetPeriod::Monthly, 100.0, &[50, 80][..], true)
        );
        let soft = parse_budget("daily:10::soft").unwrap();
        assert_eq!((soft.alerts.len(), soft.hard), (0, false));
        assert_eq!(parse_budget("daily:10:soft").unwrap(), soft);
        assert!(parse_budget("total:0.25:90:hard").unwrap().hard);
        for canonical in [
            "monthly:100:50,80",
            "daily:10::soft",
            "weekly:12.5:25,50,75:soft",
            "total:0.015",
        ] {
            assert_eq!(format_budget(&parse_budget(canonical).unwrap()), canonical);
        }
        for (bad, why) in [
            ("monthly", "expected PERIOD:USD"),
            ("hourly:5", "unknown period 'hourly'"),
            ("daily:five", "'five' is not an amount"),
            ("daily:-1", "max_usd must be"),
            ("daily:inf", "max_usd must be"),
            ("daily:5:80,50", "ascending"),
            ("daily:5:0", "1 to 100"),
            ("daily:5:50%", "'50%' is not a percentage"),
            ("daily:5:50:maybe", "'maybe' is not soft or hard"),
            ("daily:5:50:soft:x", "expected PERIOD:USD"),
        ] {
            let e = parse_budget(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn creates_send_what_is_given() {
        let mut body = json!({"name": "x"});
        args(None, None, &[]).add_to(&mut body).unwrap();
        assert_eq!(body, json!({"name": "x"}));
        args(Some(60), None, &["daily:10::soft"])
            .add_to(&mut body)
            .unwrap();
        assert_eq!(
            body,
            json!({"name": "x", "limits": {"rpm": 60},
                "budgets": [{"max_usd": 10.0, "period": "daily", "hard": false}]})
        );
        let two = args(None, None, &["daily:1", "daily:2"]).add_to(&mut body);
        assert!(two.unwrap_err().contains("one per period"));
    }

    #[test]
    fn updates_change_what_they_name_and_keep_the_rest() {
        let current = json!({
            "limits": {"rpm": 60, "tpm": 1000},
            "budgets": [
                {"max_usd": 100.0, "period": "monthly", "alerts": [80]},
                {"max_usd": 5.0, "period": "daily"},
            ],
        });
        let update = |set: QuotaArgs, clear_limits, clear_budgets| QuotaUpdateArgs {
            set,
            clear_limits,
            clear_budgets,
        };
        let body = |u: &QuotaUpdateArgs| {
            let mut body = Map::new();
            let read = u.needs_current().then_some(&current);
            u.add_to(read, &mut body).unwrap();
            Value::Object(body)
        };

        let nothing = update(args(None, None, &[]), false, false);
        assert!(!nothing.needs_current());
        assert_eq!(body(&nothing), json!({}));

        let merged = update(args(None, Some(5000), &["daily:7:50:soft"]), false, false);
        assert!(merged.needs_current());
        assert_eq!(
            body(&merged),
            json!({
                "limits": {"rpm": 60, "tpm": 5000},
                "budgets": [
                    {"max_usd": 100.0, "period": "monthly", "alerts": [80]},
                    {"max_usd": 7.0, "period": "daily", "alerts": [50], "hard": false},
                ],
            })
        );

        let cleared = update(args(None, None, &[]), true, true);
        assert!(!cleared.needs_current());
        assert_eq!(body(&cleared), json!({"limits": {}, "budgets": []}));

        let replaced = update(args(Some(1), None, &["total:3"]), true, true);
        assert!(!replaced.needs_current());
        assert_eq!(
            body(&replaced),
            json!({"limits": {"rpm": 1}, "budgets": [{"max_usd": 3.0, "period": "total"}]})
        );
        // An object read without quotas (an older gateway) has none to keep.
        let mut body = Map::new();
        merged.add_to(Some(&json!({"id": "x"})), &mut body).unwrap();
        assert_eq!(body["limits"], json!({"tpm": 5000}));
    }

    #[test]
    fn cells_print_quotas_compactly() {
        assert_eq!(limits_cell(&json!({})).unwrap(), "-");
        assert_eq!(
            limits_cell(&json!({"rpm": 60, "max_concurrent": 4})).unwrap(),
            "rpm=60,max_concurrent=4"
        );
        assert_eq!(budgets_cell(&json!([])).unwrap(), "-");
        let budgets = json!([
            {"max_usd": 100.0, "period": "monthly", "alerts": [50, 80]},
            {"max_usd": 10.0, "period": "daily", "hard": false},
        ]);
        assert_eq!(
            budgets_cell(&budgets).unwrap(),
            "monthly:100:50,80 daily:10::soft"
        );
        assert_eq!(limits_cell(&json!("odd")), None);
    }
}
