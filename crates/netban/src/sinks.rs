//! Builds sink drivers from their config: the one place that knows every driver crate.

use std::path::PathBuf;
use std::sync::Arc;

use netban_core::Sink;
use netban_core::config::{Config, SinkConfig};
use netban_core::exec::ExecSink;
use netban_core::reconcile::SinkFactory;

pub struct Factory {
    state_dir: PathBuf,
    host: String,
}

impl Factory {
    pub fn new(config: &Config) -> Factory {
        Factory {
            state_dir: config.state_dir.clone(),
            host: config.host_id(),
        }
    }
}

impl SinkFactory for Factory {
    fn build(&self, config: &SinkConfig) -> Result<Arc<dyn Sink>, String> {
        Ok(match config {
            SinkConfig::Exafs(c) => Arc::new(
                netban_exafs::ExafsSink::new(c, &self.state_dir, &self.host)
                    .map_err(|e| format!("{}: {e}", c.name))?,
            ),
            SinkConfig::Exec(c) => Arc::new(ExecSink::new(c, &self.host)?),
        })
    }
}
