//! rump: online Redis migration with SCAN, DUMP and RESTORE.
mod pipe;
fn main() {}
