//! Cooperative cancellation on SIGINT/SIGTERM: work checks the flag between chunks and phases,
//! so partial downloads stay on disk for the next run and the catalogue is never touched
//! half-way.

use tokio_util::sync::CancellationToken;

/// The run's cancellation: cloned into every task that must stop on a signal.
#[derive(Clone, Default)]
pub struct Cancel(CancellationToken);

impl Cancel {
    pub fn cancel(&self) {
        self.0.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once cancelled.
    pub async fn cancelled(&self) {
        self.0.cancelled().await;
    }

    /// Installs SIGINT/SIGTERM handlers on `rt` that cancel.
    pub fn on_signals(&self, rt: &tokio::runtime::Runtime) {
        let cancel = self.clone();
        rt.spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::warn!("interrupted: stopping after the current step");
            cancel.cancel();
        });
    }
}
