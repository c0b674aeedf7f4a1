//! `unresponsive_subnets`: with `[report] unresponsive = "subnet"`, the
//! subnets holding sources of an abuse contact given up on, where
//! the subnet rule bans at `[report] unresponsive_subnet_offenders`.
//! guardctl rewrites the table after judging the contacts; a new ban reads
//! one row of it (`Facts::unresponsive_contact`).

use super::{Store, StoreError};
use crate::time::Timestamp;
use rusqlite::params;
use std::collections::BTreeMap;

/// A subnet the subnet rule is stricter in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresponsiveSubnet {
    /// The subnet, as the subnet rule cuts it (`198.51.100.0/24`).
    pub subnet: String,
    /// The contact given up on whose source it holds.
    pub contact: String,
    /// Since when it is held.
    pub since: Timestamp,
}

impl Store {
    /// The source networks known to be `contact`'s: those reported to it
    /// and those whois named it for.
    pub fn contact_networks(&self, contact: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT s.source FROM reported_sources s JOIN reports r ON r.id = s.report
             WHERE r.contact = ?1
             UNION SELECT network FROM whois_cache WHERE lower(contact) = ?1",
        )?;
        let networks = stmt
            .query_map([contact.to_ascii_lowercase()], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(networks)
    }

    /// Makes the table hold exactly `subnets` (subnet → contact) in one
    /// transaction; a subnet held already keeps its `since`. Returns how
    /// many were added and removed.
    pub fn set_unresponsive_subnets(
        &mut self,
        subnets: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<(usize, usize), StoreError> {
        self.write(|tx| {
            let held = tx
                .prepare("SELECT subnet FROM unresponsive_subnets")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut removed = 0;
            for subnet in held.iter().filter(|s| !subnets.contains_key(*s)) {
                removed += tx.execute(
                    "DELETE FROM unresponsive_subnets WHERE subnet = ?1",
                    [subnet],
                )?;
            }
            let mut upsert = tx.prepare(
                "INSERT INTO unresponsive_subnets (subnet, contact, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (subnet) DO UPDATE SET contact = excluded.contact",
            )?;
            for (subnet, contact) in subnets {
                upsert.execute(params![subnet, contact, now])?;
            }
            let added = subnets.keys().filter(|s| !held.contains(s)).count();
            Ok((added, removed))
        })
    }

    /// The subnets held, in order.
    pub fn unresponsive_subnets(&self) -> Result<Vec<UnresponsiveSubnet>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT subnet, contact, since FROM unresponsive_subnets ORDER BY subnet")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(UnresponsiveSubnet {
                    subnet: r.get(0)?,
                    contact: r.get(1)?,
                    since: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::TempStore;

    #[test]
    fn the_table_holds_exactly_what_was_set_and_keeps_since() {
        let t = TempStore::new("unresponsive-set");
        let mut s = t.open();
        let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let one = set(&[("198.51.100.0/24", "abuse@two.example")]);
        assert_eq!(s.set_unresponsive_subnets(&one, 100).unwrap(), (1, 0));
        let two = set(&[
            ("198.51.100.0/24", "abuse@two.example"),
            ("203.0.113.0/24", "abuse@one.example"),
        ]);
        assert_eq!(s.set_unresponsive_subnets(&two, 200).unwrap(), (1, 0));
        let held = s.unresponsive_subnets().unwrap();
        assert_eq!(
            held.iter()
                .map(|h| (h.subnet.as_str(), h.since))
                .collect::<Vec<_>>(),
            [("198.51.100.0/24", 100), ("203.0.113.0/24", 200)]
        );
        assert_eq!(
            s.set_unresponsive_subnets(&BTreeMap::new(), 300).unwrap(),
            (0, 2)
        );
        assert!(s.unresponsive_subnets().unwrap().is_empty());
    }
}
