//! The abuse contacts whois named, cached per source network for
//! `guardctl report` (`whois_cache`), so a report does not ask the
//! registries again within `[report] whois_max_age`.

use super::{Store, StoreError};
use crate::time::Timestamp;
use rusqlite::{OptionalExtension, params};

/// What the cache holds for one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedContact {
    /// The abuse mailbox, or `None` when the registry named none.
    pub contact: Option<String>,
    /// The whois server that answered.
    pub server: String,
    /// When it answered.
    pub fetched: Timestamp,
}

impl Store {
    /// The contact cached for `network`, if fetched at `oldest` or later.
    pub fn cached_contact(
        &self,
        network: &str,
        oldest: Timestamp,
    ) -> Result<Option<CachedContact>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT contact, server, fetched FROM whois_cache
                 WHERE network = ?1 AND fetched >= ?2",
                params![network, oldest],
                |r| {
                    Ok(CachedContact {
                        contact: r.get(0)?,
                        server: r.get(1)?,
                        fetched: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Keeps what whois said of `network`, replacing an older answer.
    pub fn remember_contact(
        &mut self,
        network: &str,
        found: &CachedContact,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO whois_cache (network, contact, server, fetched) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (network) DO UPDATE SET contact = excluded.contact,
                     server = excluded.server, fetched = excluded.fetched",
                params![network, found.contact, found.server, found.fetched],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::TempStore;

    #[test]
    fn a_contact_is_kept_until_it_is_too_old_and_a_newer_answer_replaces_it() {
        let t = TempStore::new("whois-cache");
        let mut s = t.open();
        let found = |contact: Option<&str>, fetched| CachedContact {
            contact: contact.map(str::to_owned),
            server: "whois.ripe.net:43".into(),
            fetched,
        };
        assert_eq!(s.cached_contact("203.0.113.0/24", 0).unwrap(), None);
        s.remember_contact("203.0.113.0/24", &found(Some("abuse@isp.example"), 100))
            .unwrap();
        assert_eq!(
            s.cached_contact("203.0.113.0/24", 50).unwrap(),
            Some(found(Some("abuse@isp.example"), 100))
        );
        assert_eq!(
            s.cached_contact("203.0.113.0/24", 101).unwrap(),
            None,
            "too old"
        );
        s.remember_contact("203.0.113.0/24", &found(None, 200))
            .unwrap();
        assert_eq!(
            s.cached_contact("203.0.113.0/24", 150).unwrap(),
            Some(found(None, 200)),
            "no contact is an answer too"
        );
    }
}
