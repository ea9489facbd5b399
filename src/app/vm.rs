//! `hairpin vm associate|deassociate|migrate`: VMs of an edge in the EVB
//! station role, over the running switch's control socket (`vm.*` commands,
//! see `docs/operations.md`).

use super::show::Conn;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of every `hairpin vm` command.
#[derive(Args, Debug, Clone)]
pub struct VmOpts {
    /// The switch's control socket.
    #[arg(long, value_name = "PATH", default_value = crate::telemetry::DEFAULT_SOCKET)]
    pub control_socket: PathBuf,
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hairpin vm …`.
#[derive(Subcommand, Debug)]
pub enum VmCmd {
    /// Announce a VM to the bridge (VDP Associate); prints the VLAN in force.
    Associate {
        /// VM name (unique on this edge).
        name: String,
        /// The VM's MAC.
        #[arg(long)]
        mac: String,
        /// The VM port it sits behind.
        #[arg(long)]
        port: String,
        /// VSI type id (24 bits) the bridge looks up in its policy store.
        #[arg(long)]
        type_id: u32,
        /// VSI type version.
        #[arg(long, default_value_t = 1)]
        type_version: u8,
        /// VSI instance id (UUID).
        #[arg(long)]
        uuid: String,
        /// VLAN to ask for; 0 lets the bridge assign it.
        #[arg(long, default_value_t = 0)]
        vlan: u16,
        /// Socket and output.
        #[command(flatten)]
        opts: VmOpts,
    },
    /// Withdraw a VM (VDP De-Associate).
    Deassociate {
        /// VM name.
        name: String,
        /// Socket and output.
        #[command(flatten)]
        opts: VmOpts,
    },
    /// Move a VM to another VM port (Associate with the M hint bit).
    Migrate {
        /// VM name.
        name: String,
        /// The VM port it moves to.
        #[arg(long = "to", value_name = "PORT")]
        to_port: String,
        /// Socket and output.
        #[command(flatten)]
        opts: VmOpts,
    },
}

/// The control-socket request of a command.
pub fn request(c: &VmCmd) -> (Value, &VmOpts) {
    match c {
        VmCmd::Associate {
            name,
            mac,
            port,
            type_id,
            type_version,
            uuid,
            vlan,
            opts,
        } => (
            json!({"cmd": "vm.associate", "name": name, "mac": mac, "port": port,
                "type_id": type_id, "type_version": type_version, "uuid": uuid, "vlan": vlan}),
            opts,
        ),
        VmCmd::Deassociate { name, opts } => (json!({"cmd": "vm.deassociate", "name": name}), opts),
        VmCmd::Migrate {
            name,
            to_port,
            opts,
        } => (
            json!({"cmd": "vm.migrate", "name": name, "to_port": to_port}),
            opts,
        ),
    }
}

/// Run a `hairpin vm` command; an error reply exits 1 with its message.
pub fn run(c: VmCmd) -> Result<ExitCode, String> {
    let (req, o) = request(&c);
    let mut conn = Conn::open(&o.control_socket)?;
    let d = conn.ask(&req)?;
    if o.json {
        println!("{d}");
    } else {
        let s = |k: &str| d[k].as_str().unwrap_or("-").to_string();
        let mut line = format!("{}: {} on {}", s("name"), s("status"), s("port"));
        if let Some(v) = d["vlan"].as_u64() {
            line.push_str(&format!(", VLAN {v}"));
        }
        if let Some(p) = d["pcp"].as_u64() {
            line.push_str(&format!(", PCP {p}"));
        }
        if let Some(f) = d["migrated_from"].as_str() {
            line.push_str(&format!(" (from {f})"));
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: VmCmd,
    }

    #[test]
    fn cli_to_requests() {
        let t = T::parse_from([
            "x",
            "associate",
            "a",
            "--mac",
            "02:00:00:00:00:0a",
            "--port",
            "vm1",
            "--type-id",
            "5",
            "--uuid",
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "--json",
        ]);
        let (r, o) = request(&t.c);
        assert!(o.json);
        assert_eq!(r["cmd"], "vm.associate");
        assert_eq!(
            (&r["type_id"], &r["type_version"], &r["vlan"]),
            (&json!(5), &json!(1), &json!(0))
        );
        let t = T::parse_from(["x", "migrate", "a", "--to", "vm2", "--control-socket", "/s"]);
        let (r, o) = request(&t.c);
        assert_eq!(
            r,
            json!({"cmd": "vm.migrate", "name": "a", "to_port": "vm2"})
        );
        assert_eq!(o.control_socket, PathBuf::from("/s"));
        let t = T::parse_from(["x", "deassociate", "a"]);
        assert_eq!(
            request(&t.c).0,
            json!({"cmd": "vm.deassociate", "name": "a"})
        );
    }
}
