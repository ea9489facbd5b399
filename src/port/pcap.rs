//! pcap backend (the infra branch replaces this placeholder module).
use crate::buf::Pool;
use std::path::Path;
use std::sync::Arc;
/// Placeholder until merge.
pub struct PcapPort;
impl PcapPort {
    /// Placeholder until merge.
    pub fn open(
        _: &str,
        _: Arc<Pool>,
        _: Option<&Path>,
        _: Option<&Path>,
    ) -> Result<crate::port::ring::RingPort, String> {
        Err("pcap backend not merged".into())
    }
}
