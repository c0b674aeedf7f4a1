//! Past offenders, for key-only signaling: sources banned at least once
//! within a window, whether or not banned now.

use super::lookup::{containment_clause, containment_params};
use super::{Store, StoreError};
use crate::config::Config;
use crate::policy::keyonly::KeyOnlySet;
use crate::time::Timestamp;
use ipnet::IpNet;
use rusqlite::{Connection, params_from_iter};
use std::net::IpAddr;

/// A ban counts when its time overlaps `[since, now]`: it began in the
/// window, or it had not ended (or expired) before the window began. A ban
/// an admin lifted (`guardctl unban`) does not: the admin vouched for it;
/// nor does one pulled from the fleet (the community blocklist alone would
/// make 100,000 networks key-only for ever).
const IN_WINDOW: &str = "(since >= ?W OR coalesce(ended, expires, 9223372036854775807) >= ?W) \
     AND coalesce(end_reason, '') != 'unbanned' AND origin != 'crowdsec'";

impl Store {
    /// Every source or network banned within the window starting at `since`.
    pub fn past_offenders(&self, since: Timestamp) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT source FROM bans WHERE {}",
            IN_WINDOW.replace("?W", "?1")
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map([since], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The key-only set at `now` (see [`KeyOnlySet`]): past offenders
    /// within `[keyonly] window`, the networks of `countries` (`[geo]
    /// keyonly`), minus every allowed network.
    pub fn key_only_set(
        &self,
        config: &Config,
        now: Timestamp,
        countries: Vec<IpNet>,
    ) -> Result<KeyOnlySet, StoreError> {
        let offenders: Vec<IpNet> = self
            .past_offenders(config.keyonly.window_start(now))?
            .iter()
            .filter_map(|s| crate::addr::parse_target(s).ok())
            .collect();
        let allowed = self.allowed_networks(config)?;
        Ok(KeyOnlySet::new(
            &config.keyonly,
            offenders,
            countries,
            &allowed,
        ))
    }

    /// True when a ban of `ip`'s source, or of a network containing it,
    /// overlaps the window starting at `since`.
    pub fn is_past_offender(&self, ip: IpAddr, since: Timestamp) -> Result<bool, StoreError> {
        is_past_offender_in(self.conn(), ip, since)
    }
}

/// [`Store::is_past_offender`] inside a transaction (the admission's).
pub(crate) fn is_past_offender_in(
    conn: &Connection,
    ip: IpAddr,
    since: Timestamp,
) -> Result<bool, StoreError> {
    let keys = containment_params(ip);
    let window = format!("?{}", keys.len() + 1);
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM bans WHERE {} AND {})",
        containment_clause(keys.len() - 1),
        IN_WINDOW.replace("?W", &window)
    );
    let mut values: Vec<rusqlite::types::Value> = keys
        .iter()
        .map(|k| rusqlite::types::Value::Blob(k.to_vec()))
        .collect();
    values.push(rusqlite::types::Value::Integer(since));
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(values.iter()), |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::store::bans::{BanLength, NewBan};
    use crate::store::test_support::TempStore;
    use std::time::Duration;

    #[test]
    fn a_ban_in_the_window_makes_an_offender_whether_or_not_it_lasts() {
        let t = TempStore::new("offenders");
        let mut s = t.open();
        let config = Config::default();
        let ban = |s: &mut crate::store::Store, net: &str, at| {
            let new = NewBan {
                net: crate::addr::parse_target(net).unwrap(),
                length: BanLength::For(Duration::from_secs(60)),
                reason: "test",
                origin: crate::policy::Origin::Manual,
                failures: 0,
            };
            s.ban(&config, &new, at).unwrap();
        };
        ban(&mut s, "203.0.113.7", 1_000);
        ban(&mut s, "198.51.100.0/24", 5_000);
        let ip = |a: &str| a.parse().unwrap();
        // Window from 900: the first ban (ended at 1,060) is in it.
        assert!(s.is_past_offender(ip("203.0.113.7"), 900).unwrap());
        assert!(
            s.is_past_offender(ip("198.51.100.77"), 900).unwrap(),
            "inside a banned network"
        );
        assert!(
            !s.is_past_offender(ip("203.0.113.8"), 900).unwrap(),
            "never banned"
        );
        // Window from 2,000: the first ban had expired before it began.
        assert!(!s.is_past_offender(ip("203.0.113.7"), 2_000).unwrap());
        let mut all = s.past_offenders(900).unwrap();
        all.sort();
        assert_eq!(all, ["198.51.100.0/24", "203.0.113.7"]);
        assert_eq!(s.past_offenders(2_000).unwrap(), ["198.51.100.0/24"]);
    }
}
