//! Budgets in money: the rules (a limit per period, soft-alert thresholds) and their arithmetic,
//! with no I/O. Where the spend of a period is counted (in memory, or in Redis when replicas
//! share it) is the limiter's business; this module says which period a moment falls in, when
//! it resets, whether a request's estimated cost still fits, and which alert thresholds a
//! spend crossed.
//!
//! - Periods are calendar periods in UTC: a day starts at 00:00, a week on Monday 00:00, a month
//!   on its first day at 00:00. `total` never resets.
//! - A hard budget admits a request while the spend so far plus its estimated cost stays at or
//!   under the limit: spending exactly the limit is allowed, one nano-dollar more is not. A
//!   request is refused before it is sent; what it actually cost is settled afterwards, so a
//!   period may end slightly over its limit (by less than one request's error of estimate).
//! - Alert thresholds are percentages of the limit; a settled spend that moves from below a
//!   threshold to at or above it crosses it, once per period.

pub mod alerts;

use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

use crate::pricing::Money;

pub use portcullis_types::BudgetPeriod as Period;

/// The stretch of time a spend is counted in: from `start` (inclusive) to `end` (exclusive;
/// `None` for a total budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: Option<OffsetDateTime>,
}

/// The calendar arithmetic of a [`Period`].
pub trait PeriodWindow {
    /// The window `at` falls in.
    fn window(self, at: OffsetDateTime) -> Window;
    /// A stable name of the window `at` falls in, for counter keys: `2026-11-27` (daily),
    /// `2026-W48` (weekly, ISO week), `2026-11` (monthly), `total`.
    fn window_key(self, at: OffsetDateTime) -> String;
}

impl PeriodWindow for Period {
    fn window(self, at: OffsetDateTime) -> Window {
        let at = at.to_offset(UtcOffset::UTC);
        let midnight = |d: Date| d.with_time(Time::MIDNIGHT).assume_utc();
        let day = at.date();
        match self {
            Period::Daily => Window {
                start: midnight(day),
                end: Some(midnight(day) + Duration::DAY),
            },
            Period::Weekly => {
                let back = i64::from(day.weekday().number_days_from_monday());
                let start = midnight(day) - Duration::days(back);
                Window {
                    start,
                    end: Some(start + Duration::WEEK),
                }
            }
            Period::Monthly => {
                let first = day.replace_day(1).unwrap_or(day);
                let next = first_of_next_month(first);
                Window {
                    start: midnight(first),
                    end: Some(midnight(next)),
                }
            }
            Period::Total => Window {
                start: OffsetDateTime::UNIX_EPOCH,
                end: None,
            },
        }
    }

    fn window_key(self, at: OffsetDateTime) -> String {
        let start = self.window(at).start;
        match self {
            Period::Daily => format!(
                "{}-{:02}-{:02}",
                start.year(),
                u8::from(start.month()),
                start.day()
            ),
            Period::Weekly => {
                let (year, week, _) = start.to_iso_week_date();
                format!("{year}-W{week:02}")
            }
            Period::Monthly => format!("{}-{:02}", start.year(), u8::from(start.month())),
            Period::Total => "total".to_owned(),
        }
    }
}

fn first_of_next_month(first: Date) -> Date {
    let (year, month) = match first.month().next() {
        time::Month::January => (first.year() + 1, time::Month::January),
        m => (first.year(), m),
    };
    Date::from_calendar_date(year, month, 1).unwrap_or(first)
}

/// A budget: at most `limit` per `period`, with soft alerts at `alerts` percent of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub limit: Money,
    pub period: Period,
    /// Percentages of the limit (1 to 100, ascending) at which an alert is raised.
    pub alerts: Vec<u8>,
}

/// A request that does not fit a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub limit: Money,
    pub spent: Money,
    pub estimate: Money,
    /// When the budget's period starts again; `None` for a total budget.
    pub resets_at: Option<OffsetDateTime>,
}

impl Budget {
    /// Whether a request estimated at `estimate` fits when `spent` (settled plus reserved) has
    /// been spent in the window of `at`.
    pub fn admit(
        &self,
        spent: Money,
        estimate: Money,
        at: OffsetDateTime,
    ) -> Result<(), OverBudget> {
        if spent.saturating_add(estimate) <= self.limit {
            Ok(())
        } else {
            Err(OverBudget {
                limit: self.limit,
                spent,
                estimate,
                resets_at: self.period.window(at).end,
            })
        }
    }

    /// The alert thresholds a spend moving from `before` to `after` crosses, lowest first.
    pub fn crossed(&self, before: Money, after: Money) -> Vec<u8> {
        let reached = |spend: Money, pct: u8| {
            u128::from(spend.nanos()) * 100 >= u128::from(self.limit.nanos()) * u128::from(pct)
        };
        self.alerts
            .iter()
            .copied()
            .filter(|&pct| !reached(before, pct) && reached(after, pct))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use time::macros::datetime;

    use super::*;

    #[test]
    fn windows_are_utc_calendar_periods() {
        let at = datetime!(2026-11-27 23:59:59.999 -05:00); // 04:59:59 UTC on the 28th
        let day = Period::Daily.window(at);
        assert_eq!(day.start, datetime!(2026-11-28 00:00 UTC));
        assert_eq!(day.end, Some(datetime!(2026-11-29 00:00 UTC)));
        // 2026-11-28 is a Saturday: the week started on Monday the 23rd.
        let week = Period::Weekly.window(at);
        assert_eq!(week.start, datetime!(2026-11-23 00:00 UTC));
        assert_eq!(week.end, Some(datetime!(2026-11-30 00:00 UTC)));
        let month = Period::Monthly.window(at);
        assert_eq!(month.start, datetime!(2026-11-01 00:00 UTC));
        assert_eq!(month.end, Some(datetime!(2026-12-01 00:00 UTC)));
        assert_eq!(Period::Total.window(at).end, None);
    }

    #[test]
    fn periods_roll_over_at_their_edges() {
        // The last instant of a period and the first of the next.
        let last = datetime!(2026-12-31 23:59:59.999999 UTC);
        let first = datetime!(2027-01-01 00:00 UTC);
        for period in [Period::Daily, Period::Monthly] {
            assert_ne!(period.window(last), period.window(first), "{period:?}");
            assert_eq!(period.window(last).end, Some(first));
            assert_eq!(period.window(first).start, first);
        }
        assert_eq!(Period::Monthly.window_key(last), "2026-12");
        assert_eq!(Period::Monthly.window_key(first), "2027-01");
        // February of a leap year ends on the 29th.
        let feb = Period::Monthly.window(datetime!(2028-02-29 12:00 UTC));
        assert_eq!(feb.end, Some(datetime!(2028-03-01 00:00 UTC)));
        // Weeks: Sunday night is the same week as Monday morning before it.
        let sunday = datetime!(2026-11-29 23:59:59 UTC);
        let monday = datetime!(2026-11-30 00:00 UTC);
        assert_eq!(Period::Weekly.window_key(sunday), "2026-W48");
        assert_eq!(Period::Weekly.window_key(monday), "2026-W49");
        assert_eq!(Period::Daily.window_key(monday), "2026-11-30");
        assert_eq!(Period::Total.window_key(monday), "total");
        // ISO weeks cross years: 2026-12-31 (a Thursday) is in 2026-W53.
        assert_eq!(Period::Weekly.window_key(last), "2026-W53");
    }

    #[test]
    fn exactly_the_limit_is_allowed_and_one_more_is_not() {
        let budget = Budget {
            limit: Money(1_000),
            period: Period::Daily,
            alerts: vec![50, 80, 100],
        };
        let at = datetime!(2026-11-27 12:00 UTC);
        assert!(budget.admit(Money(400), Money(600), at).is_ok());
        let refused = budget.admit(Money(400), Money(601), at).unwrap_err();
        assert_eq!(refused.resets_at, Some(datetime!(2026-11-28 00:00 UTC)));
        assert_eq!((refused.spent, refused.estimate), (Money(400), Money(601)));
        assert!(budget.admit(Money(1_000), Money(0), at).is_ok());
        assert!(budget.admit(Money(1_000), Money(1), at).is_err());
        assert!(budget.admit(Money(u64::MAX), Money(u64::MAX), at).is_err());
    }

    #[test]
    fn alerts_fire_once_when_crossed() {
        let budget = Budget {
            limit: Money(1_000),
            period: Period::Monthly,
            alerts: vec![50, 80, 100],
        };
        assert_eq!(budget.crossed(Money(0), Money(499)), Vec::<u8>::new());
        assert_eq!(budget.crossed(Money(499), Money(500)), vec![50]);
        assert_eq!(budget.crossed(Money(500), Money(790)), Vec::<u8>::new());
        assert_eq!(budget.crossed(Money(790), Money(1_200)), vec![80, 100]);
        assert_eq!(budget.crossed(Money(1_200), Money(1_300)), Vec::<u8>::new());
    }
}
