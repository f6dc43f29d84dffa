//! Liveness of the storage behind the services, for `GET /healthz`.

/// Proves that the store answers; the error is for the log, not for clients.
pub trait HealthProbe: Send + Sync {
    fn check(&self) -> Result<(), String>;
}
