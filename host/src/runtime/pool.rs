//! Sizing the pooling allocator from the kernel limits that bound it.

use std::fs;

/// Memory mappings one in-flight instance costs (linear memory image, guard splits,
/// fiber stack and its guard, tables), measured with `pharos bench plugins`.
pub const MAPS_PER_INSTANCE: u64 = 7;
/// Mappings left for the rest of the process (code, heap, thread stacks, libraries).
pub const RESERVED_MAPS: u64 = 4096;
/// Upper bound on the pool whatever the kernel allows.
pub const MAX_POOL: u64 = 20_000;

/// What the kernel allows and what the pool was sized to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPlan {
    /// `vm.max_map_count`, when readable.
    pub max_map_count: Option<u64>,
    /// The address-space limit of the process (`ulimit -v`), when finite.
    pub address_space_limit: Option<u64>,
    /// Instances the pool holds; invocations beyond it queue.
    pub instances: u32,
    /// One sentence on what would allow more, or `None` when not kernel-bound.
    pub advice: Option<String>,
}

/// Reads the kernel limits and chooses a pool size; `requested` overrides the computed size.
pub fn plan(requested: Option<u32>, bytes_per_instance: u64) -> PoolPlan {
    let max_map_count = fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let address_space_limit = address_space_limit();
    plan_for(
        requested,
        bytes_per_instance,
        max_map_count,
        address_space_limit,
    )
}

/// The pure sizing rule behind [`plan`].
pub fn plan_for(
    requested: Option<u32>,
    bytes_per_instance: u64,
    max_map_count: Option<u64>,
    address_space_limit: Option<u64>,
) -> PoolPlan {
    let by_maps = max_map_count
        .map(|m| m.saturating_sub(RESERVED_MAPS) / MAPS_PER_INSTANCE)
        .unwrap_or(MAX_POOL);
    // Leave half of a finite address space to everything else.
    let by_space = address_space_limit
        .map(|a| (a / 2) / bytes_per_instance.max(1))
        .unwrap_or(MAX_POOL);
    let kernel_bound = by_maps.min(by_space).clamp(1, MAX_POOL);
    let instances = requested
        .map(u64::from)
        .unwrap_or(kernel_bound)
        .clamp(1, MAX_POOL);
    let advice = if requested.is_none() && kernel_bound < MAX_POOL {
        Some(if by_maps <= by_space {
            format!(
                "raise vm.max_map_count (now {}) to {} for a pool of {} instances",
                max_map_count.unwrap_or(0),
                MAX_POOL * MAPS_PER_INSTANCE + RESERVED_MAPS,
                MAX_POOL
            )
        } else {
            "raise the address-space limit (ulimit -v) for a larger pool".to_string()
        })
    } else {
        None
    };
    PoolPlan {
        max_map_count,
        address_space_limit,
        instances: u32::try_from(instances).unwrap_or(u32::MAX),
        advice,
    }
}

fn address_space_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft = line.split_whitespace().nth(3)?;
    soft.parse::<u64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_kernel_limits_allow_thousands() {
        let p = plan_for(None, 300 << 20, Some(65_530), None);
        assert_eq!(
            p.instances,
            ((65_530 - RESERVED_MAPS) / MAPS_PER_INSTANCE) as u32
        );
        assert!(p.instances > 8_000);
        assert!(
            p.advice
                .as_deref()
                .is_some_and(|a| a.contains("vm.max_map_count"))
        );
    }

    #[test]
    fn requested_size_wins_and_large_kernels_cap_at_max() {
        assert_eq!(plan_for(Some(10), 1, Some(65_530), None).instances, 10);
        let big = plan_for(None, 1, Some(10_000_000), None);
        assert_eq!(big.instances, MAX_POOL as u32);
        assert_eq!(big.advice, None);
    }

    #[test]
    fn finite_address_space_bounds_the_pool() {
        let p = plan_for(None, 1 << 30, Some(1_000_000), Some(64 << 30));
        assert_eq!(p.instances, 32);
        assert!(p.advice.as_deref().is_some_and(|a| a.contains("ulimit -v")));
    }

    #[test]
    fn probing_this_machine_gives_a_usable_pool() {
        let p = plan(None, 300 << 20);
        assert!(p.instances >= 1);
    }
}
