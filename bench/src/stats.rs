//! Summary statistics of latency samples.

/// The `p`-quantile (0.0 to 1.0) of sorted samples; 0 when there are none.
pub fn quantile(sorted: &[u64], p: f64) -> u64 {
    let index = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(index).copied().unwrap_or(0)
}
