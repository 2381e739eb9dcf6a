//! What travels from a source to a target: one key with its DUMP payload and
//! absolute expiry, and batches of them. Plain data, shared by the engine and
//! the dump-file code (which is why it lives apart from the channel).

use bytes::Bytes;

/// Where an item's key was found: the SCAN page that returned it, so the
/// target's acknowledgements can tell the checkpoint which cursors are done.
///
/// Packs the copy epoch (16 bits: which pass of the copy this is, bumped when
/// a restarted server makes the copy start over), the source node (16 bits)
/// and the page's sequence number (32 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageId(pub u64);

impl PageId {
    pub fn new(epoch: u16, node: u16, seq: u32) -> PageId {
        PageId((u64::from(epoch) << 48) | (u64::from(node) << 32) | u64::from(seq))
    }

    pub fn epoch(self) -> u16 {
        (self.0 >> 48) as u16
    }

    pub fn node(self) -> u16 {
        (self.0 >> 32) as u16
    }

    pub fn seq(self) -> u32 {
        self.0 as u32
    }

    /// The page of keys read again because they changed (`--live`): no SCAN
    /// page, so the ledger has nothing to count for it.
    pub fn live(epoch: u16, node: u16) -> PageId {
        PageId::new(epoch, node, u32::MAX)
    }

    pub fn is_live(self) -> bool {
        self.seq() == u32::MAX
    }
}

/// One key on its way from source to target.
///
/// An empty payload is a deletion (`--live`: the key no longer exists on the
/// source); a DUMP payload is never empty (it ends with a 10-byte footer).
///
/// `key` and `payload` are slices of the source connection's read buffer (or of
/// a dump file's read buffer): nothing is copied between the `DUMP` reply and
/// the `RESTORE` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The key name, binary.
    pub key: Bytes,
    /// The `DUMP` payload: the value as the source server serialises it.
    pub payload: Bytes,
    /// Absolute expiry in Unix milliseconds; 0 means the key does not expire
    /// (the same convention as `RESTORE`'s ttl argument).
    pub expire_at_ms: u64,
    /// The SCAN page the key came from (default for a dump-file source).
    pub page: PageId,
}

impl Item {
    /// A deletion of `key` on the target.
    pub fn deletion(key: Bytes, page: PageId) -> Item {
        Item {
            key,
            payload: Bytes::new(),
            expire_at_ms: 0,
            page,
        }
    }

    /// True for a deletion (see [`Item`]).
    pub fn is_deletion(&self) -> bool {
        self.payload.is_empty()
    }

    /// What the item pins in memory, as the channel's byte budget counts it:
    /// key, payload, and the `Item` plus the RESP framing around it.
    pub fn cost(&self) -> usize {
        self.key.len() + self.payload.len() + ITEM_OVERHEAD
    }
}

/// Rough per-item cost beyond key and payload.
const ITEM_OVERHEAD: usize = 96;

/// Items handed over together, so channel and wake-up costs are per batch.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<Item>,
    /// What the items pin in memory, as the byte budget counts it.
    pub bytes: usize,
}

impl Batch {
    /// An empty batch with room for `n` items.
    pub fn with_capacity(n: usize) -> Batch {
        Batch {
            items: Vec::with_capacity(n),
            bytes: 0,
        }
    }

    /// Adds an item and counts its bytes.
    pub fn push(&mut self, item: Item) {
        self.bytes += item.cost();
        self.items.push(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ids_pack_and_unpack() {
        let p = PageId::new(3, 7, 0xdead_beef);
        assert_eq!((p.epoch(), p.node(), p.seq()), (3, 7, 0xdead_beef));
        assert!(PageId::new(0, 0, 2) < PageId::new(0, 0, 3));
    }
}
