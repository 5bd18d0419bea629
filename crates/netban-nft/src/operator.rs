//! `create = false`: how a batch meets the elements already in an operator's set.
//!
//! The set is listed just before the batch, with each element's owner (`mark`):
//!
//! - an element netban did not make (the operator's own, another netban host's) is left as it
//!   is: a ban of that target changes nothing (it is blocked already) and an unban does not
//!   delete it;
//! - netban's own element is deleted and added again (new timeout), or deleted on unban;
//! - in an interval set, a network inside a wider element is not added (it is blocked
//!   already), and one holding a narrower element is refused with a message, because the
//!   kernel refuses overlapping intervals and would fail the whole transaction. The rest of
//!   the batch goes ahead.
//!
//! Netban's own table never needs this: its sets never hold overlapping elements (`layout`).

use std::collections::{HashMap, HashSet};

use netban_core::Target;

use crate::batch::{Item, Op, Overlap, overlap};
use netban_core::sink::Owner;

/// What to do with a batch's items of one operator set.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Items to put into the transaction, in order.
    pub send: Vec<(usize, &'a Item)>,
    /// netban's elements there now: deleted before they are added again or removed.
    pub ours: HashSet<Target>,
    /// Items settled without a command: `Ok(note)` (nothing to do, the note says why) or
    /// `Err(message)`.
    pub settled: Vec<(usize, Result<String, String>)>,
}

/// Plans `items` (index, item) for set `set` of `table` holding `listed` now.
pub fn plan<'a>(
    table: &str,
    set: &str,
    interval: bool,
    items: &[(usize, &'a Item)],
    listed: &[(Target, Owner)],
) -> Plan<'a> {
    let mut plan = Plan {
        ours: listed
            .iter()
            .filter(|(_, o)| *o == Owner::This)
            .map(|(t, _)| *t)
            .collect(),
        ..Plan::default()
    };
    let theirs: HashMap<Target, &Owner> = listed
        .iter()
        .filter(|(_, o)| *o != Owner::This)
        .map(|(t, o)| (*t, o))
        .collect();
    let mut current: Vec<Target> = listed.iter().map(|(t, _)| *t).collect();
    for &(i, item) in items {
        let target = item.target;
        if let Some(owner) = theirs.get(&target) {
            let who = match owner {
                Owner::Host(h) => format!("netban on {h}"),
                _ => "somebody else (no netban mark)".to_string(),
            };
            plan.settled.push((
                i,
                Ok(format!(
                    "{target} in set {set} was made by {who}; left as it is"
                )),
            ));
            continue;
        }
        match item.op {
            Op::Remove => {
                current.retain(|t| t != &target);
                if plan.ours.contains(&target) {
                    plan.send.push((i, item));
                } else {
                    plan.settled.push((i, Ok(format!("{target} is not in set {set}"))));
                }
            }
            Op::Put { .. } if plan.ours.contains(&target) || !interval => {
                current.push(target);
                plan.send.push((i, item));
            }
            Op::Put { .. } => match overlap(&target, &current) {
                Overlap::None => {
                    current.push(target);
                    plan.send.push((i, item));
                }
                Overlap::CoveredBy(wider) => plan.settled.push((
                    i,
                    Ok(format!("{target} is not added to set {set}: {wider} there covers it")),
                )),
                Overlap::Contains(narrower) => plan.settled.push((
                    i,
                    Err(format!(
                        "{target} overlaps {narrower} in set {set} of table inet {table}, and the kernel refuses overlapping intervals; remove {narrower} from the set, or let netban keep its own table (create = true), which keeps one set per prefix length"
                    )),
                )),
            },
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Place;

    fn item(target: &str, op: Op) -> Item {
        let target = Target::parse(target).unwrap();
        Item {
            target,
            place: Place {
                set: "s".into(),
                v6: false,
                network: !target.is_host(),
            },
            op,
        }
    }

    fn put() -> Op {
        Op::Put {
            timeout: Some(60),
            comment: "c".into(),
        }
    }

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn the_operators_elements_are_left_alone_and_netbans_are_replaced() {
        let listed = [
            (t("192.0.2.1"), Owner::Foreign),
            (t("192.0.2.2"), Owner::Host("web-02".into())),
            (t("192.0.2.3"), Owner::This),
        ];
        let items = [
            item("192.0.2.1", put()),
            item("192.0.2.2", Op::Remove),
            item("192.0.2.3", put()),
            item("192.0.2.4", Op::Remove),
            item("192.0.2.5", put()),
        ];
        let indexed: Vec<(usize, &Item)> = items.iter().enumerate().collect();
        let p = plan("filter", "s", false, &indexed, &listed);
        assert_eq!(p.send.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(p.ours, [t("192.0.2.3")].into());
        let notes: Vec<_> = p
            .settled
            .iter()
            .map(|(i, r)| (*i, r.clone().unwrap()))
            .collect();
        assert_eq!(
            notes,
            [
                (
                    0,
                    "192.0.2.1/32 in set s was made by somebody else (no netban mark); left as it is".to_string()
                ),
                (1, "192.0.2.2/32 in set s was made by netban on web-02; left as it is".to_string()),
                (3, "192.0.2.4/32 is not in set s".to_string()),
            ]
        );
    }

    #[test]
    fn interval_overlaps_are_settled_one_by_one() {
        let listed = [
            (t("198.51.100.0/24"), Owner::Foreign),
            (t("203.0.113.0/28"), Owner::This),
        ];
        let items = [
            item("198.51.100.7", put()),
            item("203.0.113.0/24", put()),
            item("203.0.113.0/28", Op::Remove),
            item("203.0.113.0/23", put()),
        ];
        let indexed: Vec<(usize, &Item)> = items.iter().enumerate().collect();
        let p = plan("filter", "s", true, &indexed, &listed);
        // The /24 over netban's /28 is refused; once the /28 is removed in the same batch (the
        // transaction deletes before it adds), the /23 fits.
        assert_eq!(p.send.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [2, 3]);
        assert!(
            p.settled[0]
                .1
                .as_ref()
                .unwrap()
                .contains("198.51.100.0/24 there covers it")
        );
        assert!(
            p.settled[1]
                .1
                .as_ref()
                .unwrap_err()
                .starts_with("203.0.113.0/24 overlaps 203.0.113.0/28")
        );
    }
}
