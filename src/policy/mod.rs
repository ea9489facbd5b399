//! Policy: configuration compiled into immutable snapshots the workers read (ACLs, …).

pub mod acl;
