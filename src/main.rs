//! The `hairpin` command line.
use std::process::ExitCode;

fn main() -> ExitCode {
    hairpin::app::main()
}
