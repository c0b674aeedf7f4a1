//! `guardctl ban`/`unban`/`allow`/`geo block` change the firewall
//! themselves, at once, when they can (nftables backend, root, nft
//! present); the daemon reconciles anyway, so a failure here is a note,
//! not an error.

use super::{Desired, Entry, GeoBlock, Units, nft};
use authguard_core::config::{Config, FirewallBackend};
use authguard_core::store::Store;
use ipnet::IpNet;
use std::sync::Arc;

/// Pushes the bans of `touched` (the networks whose bans changed) as one
/// small batch, fast with 100,000 bans in place; `None`, or a batch nft
/// refuses (the table is missing, intervals overlap), rebuilds the table,
/// blocked countries included.
pub fn push_now(config: &Config, store: &Store, touched: Option<&[IpNet]>) {
    if config.firewall.backend != FirewallBackend::Nftables {
        return;
    }
    let now = authguard_core::time::now();
    let units = Units::of(config);
    // Countries and steering are read only if the whole table is rebuilt.
    let result = Desired::bans_only(config, store, now).and_then(|d| {
        let full = || {
            let geo = Arc::new(GeoBlock::load(config, store)?);
            let whole = Desired::load(config, store, now, geo)?;
            nft::apply(&nft::render_full(&whole, &nft::Rules::of(config), now))
        };
        let Some(touched) = touched else {
            return full();
        };
        let (added, removed) = changes_for(&d, touched, units);
        nft::apply(&nft::render_changes(&added, &removed, units, now)).or_else(|_| full())
    });
    match result {
        Ok(()) => outln!("firewall updated"),
        Err(e) => {
            eprintln!("note: firewall not updated now ({e:#}); `guardctl daemon` will catch up")
        }
    }
}

type Elements = Vec<(IpNet, Entry)>;

/// The elements to add and remove so `touched` match `d`.
fn changes_for(d: &Desired, touched: &[IpNet], units: Units) -> (Elements, Elements) {
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for net in touched {
        // Out of both sets first: the ban may have changed scope or length.
        for (all_ports, new_only) in [(false, false), (true, false), (false, true)] {
            let entry = Entry {
                expires: None,
                all_ports,
                new_only,
            };
            removed.push((*net, entry));
        }
        if let Some(entry) = d.bans.get(net) {
            added.push((*net, *entry));
        }
    }
    // Lifting a network uncovers the narrower networks inside it (they were
    // left out of the interval set while it covered them): add them back.
    for (net, entry) in &d.bans {
        let uncovered = !units.is_unit(net) && touched.iter().any(|t| t != net && t.contains(net));
        if uncovered {
            added.push((*net, *entry));
        }
    }
    (added, removed)
}
