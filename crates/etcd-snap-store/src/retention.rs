//! Retention: which of one cluster's backups to delete. One definition for every destination:
//! `etcd-snap-store prune` applies it to object storage and `etcd-backup` feeds it the names of
//! its local and ssh destinations (`prune --names-from -`).
//!
//! Only names `etcd-<cluster id>-<YYYYmmddTHHMMSSZ>-r<revision>.db.zst[.age]` of the given cluster
//! are candidates; anything else is never selected. Backups are ordered newest first by the
//! time in the name, then by revision (then by name, so the order is total). The rules are
//! etcd-backup's, unchanged when only they are given: `--keep N` deletes all but the N newest,
//! `--keep-days D` deletes those whose time is more than D days before now, and with both each
//! applies. Grandfather-father-son rules add keeps: `--keep-daily N` keeps the newest backup of
//! each of the N most recent UTC days that have a backup, `--keep-weekly N` the same per ISO week,
//! `--keep-monthly N` per calendar month. A backup is kept if any rule keeps it (a backup
//! deleted by --keep/--keep-days but kept by a GFS rule stays); the newest is always kept.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};

/// The retention options; at least one must be set ([`Policy::is_empty`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--keep N`: at most the N newest.
    pub keep: Option<u64>,
    /// `--keep-days D`: none older than D days.
    pub keep_days: Option<u64>,
    /// `--keep-daily N`.
    pub daily: Option<u64>,
    /// `--keep-weekly N`.
    pub weekly: Option<u64>,
    /// `--keep-monthly N`.
    pub monthly: Option<u64>,
}

impl Policy {
    /// Whether no rule is given (prune refuses to run then).
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// A parsed backup name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The name as given.
    pub name: String,
    /// The time in the name (UTC).
    pub time: DateTime<Utc>,
    /// The revision in the name.
    pub revision: u64,
}

/// Parses `etcd-<cluster>-<YYYYmmddTHHMMSSZ>-r<rev>.db.zst[.age]`; `None` for any other name
/// (another cluster's, a companion, junk).
pub fn parse_name(name: &str, cluster: &str) -> Option<Backup> {
    let rest = name
        .strip_prefix("etcd-")?
        .strip_prefix(cluster)?
        .strip_prefix('-')?;
    let rest = rest
        .strip_suffix(".db.zst.age")
        .or_else(|| rest.strip_suffix(".db.zst"))?;
    let (ts, rev) = rest.split_once("-r")?;
    if ts.len() != 16 || !ts.is_char_boundary(8) || &ts[8..9] != "T" || !ts.ends_with('Z') {
        return None;
    }
    if !ts[..8].bytes().all(|b| b.is_ascii_digit())
        || !ts[9..15].bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if rev.is_empty() || rev.len() > 19 || !rev.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let revision = rev.parse().ok()?;
    let naive = NaiveDateTime::parse_from_str(&ts[..15], "%Y%m%dT%H%M%S").ok()?;
    Some(Backup {
        name: name.to_string(),
        time: Utc.from_utc_datetime(&naive),
        revision,
    })
}

/// Whether `id` looks like a cluster id as etcd-backup writes it in names (lowercase hex, 1 to
/// 16 digits).
pub fn valid_cluster_id(id: &str) -> bool {
    (1..=16).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What retention decided for one cluster: both lists newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Backups to keep.
    pub keep: Vec<String>,
    /// Backups to delete.
    pub delete: Vec<String>,
}

/// Applies `policy` to the backups of `cluster` among `names` at time `now`. Names that are not
/// this cluster's backups appear in neither list. Duplicate names count once.
pub fn decide<'a>(
    names: impl IntoIterator<Item = &'a str>,
    cluster: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    let mut backups: Vec<Backup> = names
        .into_iter()
        .filter_map(|n| parse_name(n, cluster))
        .collect();
    backups.sort_by(|a, b| {
        b.time
            .cmp(&a.time)
            .then(b.revision.cmp(&a.revision))
            .then(b.name.cmp(&a.name))
    });
    backups.dedup_by(|a, b| a.name == b.name);
    let cutoff = policy.keep_days.map(|d| {
        let secs = i64::try_from(d.saturating_mul(86_400)).unwrap_or(i64::MAX);
        now - chrono::Duration::seconds(secs.min(i64::MAX / 1000))
    });
    let gfs = policy.daily.is_some() || policy.weekly.is_some() || policy.monthly.is_some();
    let base_rules = policy.keep.is_some() || policy.keep_days.is_some();
    let mut kept = vec![false; backups.len()];
    for (i, b) in backups.iter().enumerate() {
        // etcd-backup's rules: kept unless one of them deletes it.
        let by_count = policy.keep.is_none_or(|n| (i as u64) < n);
        let by_age = cutoff.is_none_or(|c| b.time >= c);
        if base_rules && by_count && by_age {
            kept[i] = true;
        }
    }
    if gfs {
        mark_periods(&backups, policy.daily, &mut kept, |t| {
            (t.year(), t.ordinal(), 0)
        });
        mark_periods(&backups, policy.weekly, &mut kept, |t| {
            let w = t.iso_week();
            (w.year(), w.week(), 0)
        });
        mark_periods(&backups, policy.monthly, &mut kept, |t| {
            (t.year(), t.month(), 0)
        });
    }
    if let Some(first) = kept.first_mut() {
        *first = true;
    }
    let mut d = Decision::default();
    for (b, k) in backups.into_iter().zip(kept) {
        if k {
            d.keep.push(b.name);
        } else {
            d.delete.push(b.name);
        }
    }
    d
}

/// Keeps the newest backup of each of the `n` most recent periods (by `period`) that have one.
fn mark_periods(
    newest_first: &[Backup],
    n: Option<u64>,
    kept: &mut [bool],
    period: impl Fn(&DateTime<Utc>) -> (i32, u32, u32),
) {
    let Some(n) = n else { return };
    let mut seen: Option<(i32, u32, u32)> = None;
    let mut count = 0u64;
    for (i, b) in newest_first.iter().enumerate() {
        let p = period(&b.time);
        if seen == Some(p) {
            continue;
        }
        if count >= n {
            break;
        }
        seen = Some(p);
        count += 1;
        kept[i] = true;
    }
}

/// Parses `YYYYmmddTHHMMSSZ` (the `--now` flag, the time format of the names).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.strip_suffix('Z')?;
    let naive = NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S").ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const C: &str = "8e9e05c52164694d";

    fn name(ts: &str, rev: u64) -> String {
        format!("etcd-{C}-{ts}-r{rev}.db.zst.age")
    }

    fn at(ts: &str) -> DateTime<Utc> {
        parse_time(ts).unwrap()
    }

    fn run(names: &[String], policy: Policy, now: &str) -> Decision {
        decide(names.iter().map(String::as_str), C, &policy, at(now))
    }

    #[test]
    fn parses_only_this_clusters_backups() {
        let b = parse_name(&name("20261204T101500Z", 42), C).unwrap();
        assert_eq!(b.revision, 42);
        assert_eq!(b.time, at("20261204T101500Z"));
        assert!(parse_name(&format!("etcd-{C}-20261204T101500Z-r7.db.zst"), C).is_some());
        for junk in [
            format!("etcd-{C}-20261204T101500Z-r7.db.zst.sha256"),
            format!("etcd-{C}-20261204T101500Z-r7.db.zst.json"),
            format!("etcd-{C}-20261204T101500Z.db.zst.age.part"),
            format!("etcd-{C}-20261304T101500Z-r7.db.zst"),
            format!("etcd-{C}-20261204T251500Z-r7.db.zst"),
            format!("etcd-{C}-20261204T101500Z-r.db.zst"),
            format!("etcd-{C}-20261204T101500Z-r-1.db.zst"),
            format!("etcd-{C}-2026120T101500Z-r7.db.zst"),
            format!("etcd-{C}x-20261204T101500Z-r7.db.zst"),
            "etcd-aaaa-20261204T101500Z-r7.db.zst".to_string(),
            "notes.txt".to_string(),
            String::new(),
            format!("etcd-{C}-2026\u{e9}204T101500Z-r7.db.zst"),
        ] {
            assert_eq!(parse_name(&junk, C), None, "{junk}");
        }
    }

    #[test]
    fn keep_n_deletes_all_but_the_n_newest() {
        let names: Vec<String> = (1..=5)
            .map(|d| name(&format!("2026120{d}T000000Z"), d))
            .collect();
        let d = run(
            &names,
            Policy {
                keep: Some(2),
                ..Policy::default()
            },
            "20261206T000000Z",
        );
        assert_eq!(d.keep, vec![names[4].clone(), names[3].clone()]);
        assert_eq!(
            d.delete,
            vec![names[2].clone(), names[1].clone(), names[0].clone()]
        );
    }

    #[test]
    fn keep_days_cuts_by_the_time_in_the_name_and_never_the_newest() {
        let names = vec![name("20261101T000000Z", 1), name("20261120T000000Z", 2)];
        let p = Policy {
            keep_days: Some(10),
            ..Policy::default()
        };
        let d = run(&names, p, "20261204T000000Z");
        assert_eq!(
            d.keep,
            vec![names[1].clone()],
            "the newest survives even when too old"
        );
        assert_eq!(d.delete, vec![names[0].clone()]);
        // Exactly D days old is kept (etcd-backup deletes only names before the cutoff).
        let d = run(&names, p, "20261111T000000Z");
        assert!(d.delete.is_empty(), "{d:?}");
    }

    #[test]
    fn keep_and_keep_days_each_apply() {
        let names: Vec<String> = (1..=4)
            .map(|d| name(&format!("2026120{d}T000000Z"), d))
            .collect();
        let p = Policy {
            keep: Some(3),
            keep_days: Some(2),
            ..Policy::default()
        };
        let d = run(&names, p, "20261205T000000Z");
        assert_eq!(d.keep, vec![names[3].clone(), names[2].clone()]);
    }

    #[test]
    fn same_second_duplicates_order_by_revision() {
        let names = vec![
            name("20261204T101500Z", 10),
            name("20261204T101500Z", 9),
            name("20261204T101500Z", 11),
        ];
        let d = run(
            &names,
            Policy {
                keep: Some(1),
                ..Policy::default()
            },
            "20261204T120000Z",
        );
        assert_eq!(d.keep, vec![names[2].clone()]);
        assert_eq!(d.delete, vec![names[0].clone(), names[1].clone()]);
        // Daily keeps one per day: the highest revision of that second.
        let d = run(
            &names,
            Policy {
                daily: Some(1),
                ..Policy::default()
            },
            "20261204T120000Z",
        );
        assert_eq!(d.keep, vec![names[2].clone()]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_recent_day_in_utc() {
        // Two a day for four days, across a month end; 23:59:59 and 00:00:00 are different days.
        let names = vec![
            name("20261129T235959Z", 1),
            name("20261130T000000Z", 2),
            name("20261130T120000Z", 3),
            name("20261201T000000Z", 4),
            name("20261201T235959Z", 5),
            name("20261202T060000Z", 6),
        ];
        let d = run(
            &names,
            Policy {
                daily: Some(3),
                ..Policy::default()
            },
            "20261202T070000Z",
        );
        assert_eq!(
            d.keep,
            vec![names[5].clone(), names[4].clone(), names[2].clone()]
        );
    }

    #[test]
    fn weekly_uses_iso_weeks() {
        // 2026-12-27 is a Sunday (ISO week 52), 2026-12-28 a Monday (week 53 of 2026),
        // 2027-01-03 a Sunday (still 2026-W53), 2027-01-04 Monday (2027-W01).
        let names = vec![
            name("20261227T230000Z", 1),
            name("20261228T010000Z", 2),
            name("20270103T230000Z", 3),
            name("20270104T000000Z", 4),
        ];
        let d = run(
            &names,
            Policy {
                weekly: Some(2),
                ..Policy::default()
            },
            "20270105T000000Z",
        );
        assert_eq!(d.keep, vec![names[3].clone(), names[2].clone()]);
        let d = run(
            &names,
            Policy {
                weekly: Some(3),
                ..Policy::default()
            },
            "20270105T000000Z",
        );
        assert_eq!(
            d.keep,
            vec![names[3].clone(), names[2].clone(), names[0].clone()]
        );
        assert_eq!(d.delete, vec![names[1].clone()]);
    }

    #[test]
    fn monthly_and_rules_union() {
        let names = vec![
            name("20260915T000000Z", 1),
            name("20261001T000000Z", 2),
            name("20261031T235959Z", 3),
            name("20261101T000000Z", 4),
            name("20261204T000000Z", 5),
        ];
        let p = Policy {
            monthly: Some(3),
            keep: Some(1),
            ..Policy::default()
        };
        let d = run(&names, p, "20261204T000000Z");
        assert_eq!(
            d.keep,
            vec![names[4].clone(), names[3].clone(), names[2].clone()]
        );
        assert_eq!(d.delete, vec![names[1].clone(), names[0].clone()]);
    }

    #[test]
    fn other_clusters_and_junk_are_never_selected() {
        let mut names = vec![
            name("20260101T000000Z", 1),
            name("20260102T000000Z", 2),
            "etcd-0123456789abcdef-20250101T000000Z-r1.db.zst".to_string(),
            "README".to_string(),
            format!("etcd-{C}-20250101T000000Z-r1.db.zst.sha256"),
        ];
        names.push(names[0].clone());
        let d = run(
            &names,
            Policy {
                keep: Some(1),
                ..Policy::default()
            },
            "20260103T000000Z",
        );
        assert_eq!(d.keep, vec![names[1].clone()]);
        assert_eq!(d.delete, vec![names[0].clone()]);
    }

    #[test]
    fn no_backups_no_decision() {
        let d = run(
            &[],
            Policy {
                daily: Some(1),
                ..Policy::default()
            },
            "20260103T000000Z",
        );
        assert_eq!(d, Decision::default());
        assert!(Policy::default().is_empty());
    }

    #[test]
    fn cluster_ids() {
        assert!(valid_cluster_id("8e9e05c52164694d"));
        assert!(!valid_cluster_id("8E9E"));
        assert!(!valid_cluster_id(""));
        assert!(!valid_cluster_id("../x"));
        assert!(!valid_cluster_id("8e9e05c52164694d0"));
    }
}
