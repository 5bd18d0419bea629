//! A daemon component: one task with one job, started by the daemon and told when to stop.

use async_trait::async_trait;
use tokio::sync::watch;

use super::handle::DaemonHandle;

/// Resolves when the daemon stops.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new(rx: watch::Receiver<bool>) -> Shutdown {
        Shutdown(rx)
    }

    /// Waits until the daemon stops.
    pub async fn wait(&mut self) {
        while !*self.0.borrow() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

#[async_trait]
pub trait Component: Send {
    fn name(&self) -> &'static str;
    /// Runs until `stop`; an error is logged and stops only this component.
    async fn run(self: Box<Self>, h: DaemonHandle, stop: Shutdown) -> Result<(), String>;
}
