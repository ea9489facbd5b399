//! `hairpin lab up | down | status | restart | vm`: the network-namespace lab (see [`crate::lab`]).

use crate::lab::{self, Mode, UpArgs};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// The lab's subcommands.
#[derive(Subcommand, Debug)]
pub enum LabCmd {
    /// Build the namespaces and veths, start the edge and bridge instances.
    Up {
        /// Number of VM namespaces (hp-vm1..N).
        #[arg(long, default_value_t = 2)]
        vms: u32,
        /// Hypervisor edge: hairpin edge-vepa, hairpin edge-veb, kernel macvlan in VEPA mode, or qbg (hairpin EVB stations).
        #[arg(long, default_value = "vepa")]
        mode: String,
        /// Lab config: [lab] options, [policy.*] and [meter.*] for the bridge.
        #[arg(long)]
        config: Option<PathBuf>,
        /// `--mode qbg`: number of hairpin edges (EVB stations), each on its own bridge port.
        #[arg(long, default_value_t = 1)]
        edges: u32,
    },
    /// `--mode qbg`: start, stop or migrate a VM (VDP through its edge).
    Vm {
        #[command(subcommand)]
        cmd: LabVmCmd,
    },
    /// Remove every namespace, link and instance of the lab (idempotent, also after a crash).
    Down,
    /// Show the instances, their pids, configs and logs, and the lab's namespaces.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop and start one instance (edge, edgeN or bridge) from its generated config.
    Restart {
        /// `edge` or `bridge`.
        instance: String,
    },
}

/// `hairpin lab vm …` (`--mode qbg`).
#[derive(Subcommand, Debug)]
pub enum LabVmCmd {
    /// Associate the VM on an edge and give it its address there.
    Start {
        /// `vm1`, `vm2`, …
        name: String,
        /// The edge (default 1).
        #[arg(long)]
        edge: Option<u32>,
    },
    /// Take the VM's address away and de-associate it.
    Stop {
        /// `vm1`, `vm2`, …
        name: String,
    },
    /// Move the VM to another edge (associate there, de-associate on the old one).
    Migrate {
        /// `vm1`, `vm2`, …
        name: String,
        /// The edge it moves to.
        #[arg(long)]
        to: u32,
    },
}

/// Run a lab subcommand.
pub fn run(cmd: LabCmd) -> Result<ExitCode, String> {
    match cmd {
        LabCmd::Up {
            vms,
            mode,
            config,
            edges,
        } => {
            let st = lab::up(&UpArgs {
                vms,
                mode: Mode::parse(&mode)?,
                config,
                exe: None,
                edges,
            })?;
            println!(
                "hairpin lab: up, mode {}, {} VMs; `hairpin lab status` for details",
                st.mode.name(),
                st.vms
            );
            print!("{}", lab::status_text());
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Vm { cmd } => {
            let r = match cmd {
                LabVmCmd::Start { name, edge } => lab::vm_start(&name, edge)?,
                LabVmCmd::Stop { name } => lab::vm_stop(&name)?,
                LabVmCmd::Migrate { name, to } => lab::vm_migrate(&name, to)?,
            };
            let vlan = r.replies.first().and_then(|v| v["vlan"].as_u64());
            match (r.edge, vlan) {
                (Some(e), Some(v)) => println!(
                    "hairpin lab: {} runs behind edge{e}, VLAN {v} from the bridge",
                    r.vm
                ),
                _ => println!("hairpin lab: {} stopped", r.vm),
            }
            println!("{}", serde_json::to_string(&r.replies).unwrap());
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Down => {
            let r = lab::down()?;
            println!(
                "hairpin lab: down ({} processes stopped, {} namespaces and {} links removed)",
                r.processes.len(),
                r.namespaces.len(),
                r.links.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Status { json } => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&lab::status_json()).unwrap()
                );
            } else {
                print!("{}", lab::status_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Restart { instance } => {
            let pid = lab::restart(&instance)?;
            println!("hairpin lab: {instance} restarted (pid {pid})");
            Ok(ExitCode::SUCCESS)
        }
    }
}
