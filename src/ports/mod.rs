//! Ports: what the domain needs from the world, as traits, with in-memory implementations
//! for tests and embedders.

pub mod clock;
pub mod health;
pub mod random;
