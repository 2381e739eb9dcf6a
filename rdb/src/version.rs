//! Which RDB versions define which type bytes, and which payload versions a
//! server accepts: what the engine consults to choose, per key, between
//! passing a payload through, rewriting its footer and re-encoding it.
//!
//! Two lines of servers diverged after RDB 11 (Redis 7.2, Valkey 7.2–8.1):
//! Redis went on with 12 (7.4–8.4) and 13 (8.6); Valkey 9.0 jumped to 80
//! and treats 12–79 as foreign. Type byte 22 means different things on the
//! two lines: a Redis 7.4 release-candidate hash layout at 12–79, Valkey's
//! hash with field TTLs at 80 and above. The facts here were checked
//! against the four servers the tests run (see the crate README's table).

/// `RDB_TYPE_*` type bytes.
pub mod types {
    /// A string.
    pub const STRING: u8 = 0;
    /// A list as its elements (linked list).
    pub const LIST: u8 = 1;
    /// A set as its members (hashtable).
    pub const SET: u8 = 2;
    /// A sorted set with text scores.
    pub const ZSET: u8 = 3;
    /// A hash as its fields and values (hashtable).
    pub const HASH: u8 = 4;
    /// A sorted set with binary scores (skiplist).
    pub const ZSET_2: u8 = 5;
    /// A module value, Redis 4.0 release-candidate format.
    pub const MODULE_PRE_GA: u8 = 6;
    /// A module value with self-describing opcodes.
    pub const MODULE_2: u8 = 7;
    /// A hash as a zipmap.
    pub const HASH_ZIPMAP: u8 = 9;
    /// A list as one ziplist.
    pub const LIST_ZIPLIST: u8 = 10;
    /// A set as an intset.
    pub const SET_INTSET: u8 = 11;
    /// A sorted set as a ziplist.
    pub const ZSET_ZIPLIST: u8 = 12;
    /// A hash as a ziplist.
    pub const HASH_ZIPLIST: u8 = 13;
    /// A list as a quicklist of ziplists.
    pub const LIST_QUICKLIST: u8 = 14;
    /// A stream, first layout.
    pub const STREAM_LISTPACKS: u8 = 15;
    /// A hash as a listpack.
    pub const HASH_LISTPACK: u8 = 16;
    /// A sorted set as a listpack.
    pub const ZSET_LISTPACK: u8 = 17;
    /// A list as a quicklist of listpacks and plain nodes.
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// A stream with first ID, max deleted ID, entries added and group
    /// entries read.
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// A set as a listpack.
    pub const SET_LISTPACK: u8 = 20;
    /// A stream with consumer active times.
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// At RDB 80+ (Valkey 9.0): a hash with field TTLs (`RDB_TYPE_HASH_2`).
    /// At 12–79: Redis 7.4 release-candidate `HASH_METADATA_PRE_GA`.
    pub const HASH_2: u8 = 22;
    /// At 12–79: Redis 7.4 release-candidate `HASH_LISTPACK_EX_PRE_GA`.
    /// At 81+ (Valkey 9.2): `PATH_HASH`, not decoded here.
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    /// A hash with field TTLs, hashtable layout (Redis 7.4+).
    pub const HASH_METADATA: u8 = 24;
    /// A hash with field TTLs, listpack layout (Redis 7.4+).
    pub const HASH_LISTPACK_EX: u8 = 25;
}

/// The oldest RDB version with `DUMP`/`RESTORE` (Redis 2.6).
pub const OLDEST_DUMP_VERSION: u16 = 6;
/// The last version both lines share (Redis 7.2, Valkey 7.2–8.1).
pub const LAST_COMMON_VERSION: u16 = 11;
/// The first Valkey-only version (Valkey 9.0); 12–79 are Redis-only.
pub const FIRST_VALKEY_VERSION: u16 = 80;

/// True for versions of the Valkey 9+ line.
fn is_valkey_line(version: u16) -> bool {
    version >= FIRST_VALKEY_VERSION
}

/// The lowest RDB version whose servers define `type_byte` (with the
/// meaning it has from then on), or `None` for a byte no version defines.
///
/// Types that predate `DUMP` report [`OLDEST_DUMP_VERSION`]. Type 22 reports
/// 80, Valkey's meaning: no released Redis writes its 7.4-RC layout.
pub fn min_version_for_type(type_byte: u8) -> Option<u16> {
    use types::*;
    Some(match type_byte {
        STRING | LIST | SET | ZSET | HASH => OLDEST_DUMP_VERSION,
        HASH_ZIPMAP | LIST_ZIPLIST | SET_INTSET | ZSET_ZIPLIST | HASH_ZIPLIST => {
            OLDEST_DUMP_VERSION
        }
        LIST_QUICKLIST => 7,
        ZSET_2 | MODULE_PRE_GA | MODULE_2 => 8,
        STREAM_LISTPACKS => 9,
        HASH_LISTPACK | ZSET_LISTPACK | LIST_QUICKLIST_2 | STREAM_LISTPACKS_2 => 10,
        SET_LISTPACK | STREAM_LISTPACKS_3 => 11,
        HASH_2 => FIRST_VALKEY_VERSION,
        HASH_METADATA | HASH_LISTPACK_EX => 12,
        _ => return None,
    })
}

/// True if a server writing RDB `version` loads `type_byte` with the
/// meaning it has from [`min_version_for_type`] on.
///
/// Type 6 is never supported: released servers refuse the pre-GA module
/// format. Redis-only types (24, 25) are not supported on the Valkey line,
/// nor Valkey's 22 on the Redis line.
pub fn type_supported(type_byte: u8, version: u16) -> bool {
    let Some(min) = min_version_for_type(type_byte) else {
        return false;
    };
    if type_byte == types::MODULE_PRE_GA || version < min {
        return false;
    }
    if is_valkey_line(version) {
        min <= LAST_COMMON_VERSION || min >= FIRST_VALKEY_VERSION
    } else {
        true
    }
}

/// True if a server whose own RDB version is `target` accepts a payload
/// whose footer says `payload` (by version alone; the type must be
/// supported too).
///
/// Every server refuses newer versions. Valkey 9+ also refuses the
/// Redis-only range 12–79 (its default `rdb-version-check strict`).
pub fn version_accepted(target: u16, payload: u16) -> bool {
    if payload > target {
        return false;
    }
    !(is_valkey_line(target) && payload > LAST_COMMON_VERSION && !is_valkey_line(payload))
}

/// Which line of servers a version number belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerLine {
    /// Redis (`INFO server` has `redis_version` and no `valkey_version`).
    Redis,
    /// Valkey (`server_name:valkey`, `valkey_version`; its `redis_version`
    /// stays at 7.2.4 for compatibility and says nothing).
    Valkey,
}

/// The RDB version a server of `line` at `major.minor` writes (and so the
/// newest its `RESTORE` accepts), or `None` for versions this crate does
/// not know: before `DUMP` existed, or newer than the last one checked.
/// A caller should then learn it from the first refusal, not guess.
///
/// From `RDB_VERSION` in each release's rdb.h, and measured for Redis 6.2,
/// 7.0, Valkey 8.1 and 9.1 (their `DUMP` footers, `tests/servers.rs`).
pub fn rdb_version_for(line: ServerLine, major: u32, minor: u32) -> Option<u16> {
    Some(match (line, major, minor) {
        (ServerLine::Redis, 2, 6..) | (ServerLine::Redis, 3, 0..=1) => 6,
        (ServerLine::Redis, 3, _) => 7,
        (ServerLine::Redis, 4, _) => 8,
        (ServerLine::Redis, 5 | 6, _) => 9,
        (ServerLine::Redis, 7, 0..=1) => 10,
        (ServerLine::Redis, 7, 2..=3) => 11,
        (ServerLine::Redis, 7, _) | (ServerLine::Redis, 8, 0..=5) => 12,
        (ServerLine::Redis, 8, 6..=7) => 13,
        (ServerLine::Valkey, 7 | 8, _) => LAST_COMMON_VERSION,
        (ServerLine::Valkey, 9, 0..=1) => FIRST_VALKEY_VERSION,
        (ServerLine::Valkey, 9, 2..=3) => 81,
        _ => return None,
    })
}

/// What to do with one payload for one target, cheapest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Send the payload as it is.
    PassThrough,
    /// Same bytes, the target's version and a new CRC ([`rewrite_footer`](crate::rewrite_footer)).
    RewriteFooter,
    /// Decode and encode for the target ([`encode`](crate::encode)).
    Reencode,
}

/// How to get a payload of `type_byte` written at RDB `payload` into a
/// server of RDB version `target`.
pub fn plan(type_byte: u8, payload: u16, target: u16) -> Plan {
    if version_accepted(target, payload) {
        return Plan::PassThrough;
    }
    // 22 and 23 from the Redis line are 7.4-RC layouts: only a re-encode
    // gives them a meaning any other server shares.
    let redis_rc_hash = (type_byte == types::HASH_2 || type_byte == types::HASH_LISTPACK_EX_PRE_GA)
        && !is_valkey_line(payload);
    if !redis_rc_hash && type_supported(type_byte, target) {
        Plan::RewriteFooter
    } else {
        Plan::Reencode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bytes_by_server_line() {
        // Redis 6.2 (9): streams yes, listpacks no.
        assert!(type_supported(types::STREAM_LISTPACKS, 9));
        assert!(!type_supported(types::HASH_LISTPACK, 9));
        // Redis 7.0 (10): stream v2 yes, v3 and set listpack no.
        assert!(type_supported(types::STREAM_LISTPACKS_2, 10));
        assert!(!type_supported(types::STREAM_LISTPACKS_3, 10));
        assert!(!type_supported(types::SET_LISTPACK, 10));
        // Valkey 8.1 (11): all shared types, no field TTLs.
        assert!(type_supported(types::STREAM_LISTPACKS_3, 11));
        assert!(!type_supported(types::HASH_2, 11));
        assert!(!type_supported(types::HASH_METADATA, 11));
        // Redis 7.4 (12): its own field-TTL types, not Valkey's.
        assert!(type_supported(types::HASH_METADATA, 12));
        assert!(!type_supported(types::HASH_2, 12));
        // Valkey 9 (80): its own, not Redis'.
        assert!(type_supported(types::HASH_2, 80));
        assert!(!type_supported(types::HASH_LISTPACK_EX, 80));
        assert!(type_supported(types::LIST, 80));
        // Never: pre-GA modules, unknown bytes.
        assert!(!type_supported(types::MODULE_PRE_GA, 80));
        assert!(!type_supported(8, 80));
        assert_eq!(min_version_for_type(8), None);
        assert_eq!(min_version_for_type(200), None);
    }

    #[test]
    fn accepted_versions() {
        assert!(version_accepted(10, 9));
        assert!(version_accepted(10, 10));
        assert!(!version_accepted(10, 11));
        assert!(!version_accepted(11, 80));
        assert!(version_accepted(80, 11));
        assert!(version_accepted(80, 80));
        assert!(!version_accepted(80, 12));
        assert!(!version_accepted(80, 79));
        assert!(!version_accepted(12, 80));
    }

    #[test]
    fn server_versions_to_rdb_versions() {
        use ServerLine::*;
        assert_eq!(rdb_version_for(Redis, 2, 4), None);
        assert_eq!(rdb_version_for(Redis, 2, 8), Some(6));
        assert_eq!(rdb_version_for(Redis, 3, 2), Some(7));
        assert_eq!(rdb_version_for(Redis, 4, 0), Some(8));
        assert_eq!(rdb_version_for(Redis, 6, 2), Some(9));
        assert_eq!(rdb_version_for(Redis, 7, 0), Some(10));
        assert_eq!(rdb_version_for(Redis, 7, 2), Some(11));
        assert_eq!(rdb_version_for(Redis, 7, 4), Some(12));
        assert_eq!(rdb_version_for(Redis, 8, 4), Some(12));
        assert_eq!(rdb_version_for(Redis, 8, 6), Some(13));
        assert_eq!(rdb_version_for(Redis, 9, 0), None);
        assert_eq!(rdb_version_for(Valkey, 8, 1), Some(11));
        assert_eq!(rdb_version_for(Valkey, 9, 1), Some(80));
        assert_eq!(rdb_version_for(Valkey, 9, 2), Some(81));
        assert_eq!(rdb_version_for(Valkey, 10, 0), None);
    }

    #[test]
    fn plans() {
        // Same version: nothing to do.
        assert_eq!(plan(types::LIST_QUICKLIST_2, 10, 10), Plan::PassThrough);
        // Valkey 9 string → Redis 7.0: the type exists there.
        assert_eq!(plan(types::STRING, 80, 10), Plan::RewriteFooter);
        // Valkey 8.1 set listpack → Redis 7.0: it does not.
        assert_eq!(plan(types::SET_LISTPACK, 11, 10), Plan::Reencode);
        // Valkey 9 stream v3 → Valkey 8.1: same layout, older footer.
        assert_eq!(plan(types::STREAM_LISTPACKS_3, 80, 11), Plan::RewriteFooter);
        // Redis 7.4 list → Valkey 9: version refused, type shared.
        assert_eq!(plan(types::LIST_QUICKLIST_2, 12, 80), Plan::RewriteFooter);
        // Field TTLs across lines: always a re-encode.
        assert_eq!(plan(types::HASH_METADATA, 12, 80), Plan::Reencode);
        assert_eq!(plan(types::HASH_2, 80, 12), Plan::Reencode);
        // A Redis 7.4-RC type 22 to Valkey 9 must not pass as Valkey's 22.
        assert_eq!(plan(types::HASH_2, 12, 80), Plan::Reencode);
    }
}
