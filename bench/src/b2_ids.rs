//! Where B2's criterion results are stored: `target/criterion/<group>/<function>/<body bytes>/`.
//! benches/verify.rs writes them and `signature_cpu` reads them; both include this one file.

use hub_shared::webhooks::inbound::InboundScheme;

/// The body sizes every scheme is measured with (1 KiB and 64 KiB).
pub const BODY_SIZES: [usize; 2] = [1024, 64 * 1024];

/// The function measuring `hub_shared::webhooks::inbound::verify`.
pub const VERIFY: &str = "verify";

/// The function measuring the raw primitive over the same signed bytes.
pub const BASELINE: &str = "baseline";

/// One criterion group per scheme.
pub fn group(scheme: InboundScheme) -> String {
    format!("b2_{}", scheme.as_str())
}
