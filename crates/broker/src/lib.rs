//! Sluice broker core.
