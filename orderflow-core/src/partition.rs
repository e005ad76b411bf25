//! The partition of an order: a stable hash of its first line's sku.
//!
//! FNV-1a is used rather than the standard library's hasher because the result
//! must never change between builds, versions or machines: every replica of
//! ingress-api must route a sku to the same partition forever.

use crate::domain::Sku;

/// Partition number in `0..partitions`.
pub fn partition_for(sku: &Sku, partitions: u16) -> u16 {
    assert!(partitions > 0, "partition count must be positive");
    (fnv1a64(sku.as_str().as_bytes()) % u64::from(partitions)) as u16
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_pinned_so_routing_never_changes_between_releases() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let sku = Sku::parse("WIDGET-1").unwrap();
        assert_eq!(partition_for(&sku, 8), (fnv1a64(b"WIDGET-1") % 8) as u16);
    }

    #[test]
    fn every_partition_is_reachable() {
        let mut seen = [false; 8];
        for i in 0..200 {
            let sku = Sku::parse(&format!("sku-{i}")).unwrap();
            seen[usize::from(partition_for(&sku, 8))] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
