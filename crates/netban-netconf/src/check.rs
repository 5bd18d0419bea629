//! `netban check` for a NETCONF device: a fresh session (so the host key is verified now,
//! not when the kept session was opened), the capabilities it needs, and the blocklist read
//! back and counted by owner. One line; warnings about the config are appended.

use std::time::Instant;

use netban_core::sink::SinkError;

use crate::config::Datastore;
use crate::edit;
use crate::error::NetconfError;
use crate::listing;
use crate::sink::NetconfSink;
use netban_core::sink::Owner;

impl NetconfSink {
    /// Opens a fresh session (host key verified), reads the list; one line for `netban check`.
    pub async fn check(&self, deadline: Instant) -> Result<String, SinkError> {
        let err = |e: NetconfError| e.to_sink_error(&self.name);
        let mut session = self.device.open_fresh(deadline).await.map_err(err)?;
        let mut line = format!(
            "{} (host key {}), NETCONF session {} with {}, {} datastore",
            session.addr(),
            session.host_key(),
            session.session_id().unwrap_or("?"),
            session.framing().as_str(),
            self.mode.datastore.as_str()
        );
        if self.mode.datastore == Datastore::Candidate
            && !session.has_capability(crate::session::CANDIDATE)
        {
            return Err(err(NetconfError::NoCandidate {
                addr: session.addr().to_string(),
            }));
        }
        let raw = edit::read(&mut session, &self.layout, Datastore::Running, deadline)
            .await
            .map_err(err)?;
        session.close().await;
        match raw {
            None => line.push_str("; the blocklist is not read (no list_filter)"),
            Some(raw) => {
                let held = listing::held_entries(raw, &self.layout, &self.mark);
                let count = |o: fn(&Owner) -> bool| held.iter().filter(|h| o(&h.owner)).count();
                line.push_str(&format!(
                    "; {} entries in the blocklist: {} netban's (this instance), {} of other netban instances, {} not netban's",
                    held.len(),
                    count(|o| *o == Owner::This),
                    count(|o| matches!(o, Owner::Host(_))),
                    count(|o| *o == Owner::Foreign),
                ));
            }
        }
        for w in &self.warnings {
            line.push_str(&format!("; warning: {w}"));
        }
        Ok(line)
    }
}
