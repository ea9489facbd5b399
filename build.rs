//! Build script. Does nothing unless the `dpdk` feature is on; then it asks
//! pkg-config for the system DPDK (`libdpdk` >= 22.11), compiles the C shim
//! (`src/dpdk/shim.c`, DPDK's static-inline calls) and generates the bindings
//! with bindgen, passing the same `pkg-config --cflags` (`-include
//! rte_config.h`, `-march=...`, include paths) to both the C compiler and clang.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::path::PathBuf;
    use std::process::Command;

    const MIN_VERSION: (u32, u32) = (22, 11);
    const HINT: &str = "install the DPDK development package: Debian/Ubuntu `apt-get install libdpdk-dev libclang-dev pkg-config` \
         (or set PKG_CONFIG_PATH to a DPDK >= 22.11 install); build without `--features dpdk` to leave the DPDK backend out";

    fn fail(msg: &str) -> ! {
        eprintln!("\nerror: hairpin feature `dpdk`: {msg}\n  hint: {HINT}\n");
        std::process::exit(1);
    }

    fn pkg_config(what: &str) -> String {
        let out = match Command::new("pkg-config").args([what, "libdpdk"]).output() {
            Ok(o) => o,
            Err(e) => fail(&format!("cannot run pkg-config: {e}")),
        };
        if !out.status.success() {
            fail(&format!(
                "pkg-config cannot find libdpdk (package libdpdk-dev): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn build() {
        for f in ["src/dpdk/shim.c", "src/dpdk/shim.h"] {
            println!("cargo:rerun-if-changed={f}");
        }
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
        let version = pkg_config("--modversion");
        let mut it = version.split('.').map(|s| s.parse::<u32>().unwrap_or(0));
        let (maj, min) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        if (maj, min) < MIN_VERSION {
            fail(&format!(
                "libdpdk {version} is too old: hairpin needs DPDK >= {}.{}",
                MIN_VERSION.0, MIN_VERSION.1
            ));
        }
        println!("cargo:rustc-env=HAIRPIN_DPDK_VERSION={version}");
        // `-include rte_config.h` is two words: keep the order as pkg-config gives it.
        let cflags: Vec<String> = pkg_config("--cflags")
            .split_whitespace()
            .map(str::to_string)
            .collect();

        let mut cc = cc::Build::new();
        cc.file("src/dpdk/shim.c").opt_level(3).warnings(true);
        for f in &cflags {
            cc.flag(f);
        }
        // Allow-listed experimental APIs (rte_thread_register).
        cc.define("ALLOW_EXPERIMENTAL_API", None);
        cc.compile("hairpin_dpdk_shim");

        for tok in pkg_config("--libs").split_whitespace() {
            if let Some(dir) = tok.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={dir}");
            } else if let Some(lib) = tok.strip_prefix("-l") {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
        }
        // rte_eth_from_rings (in-process ring ethdevs for tests and the bench)
        // lives in the net_ring driver library, which libdpdk.pc does not list.
        println!("cargo:rustc-link-lib=dylib=rte_net_ring");

        let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
        let b = bindgen::Builder::default()
            .header("src/dpdk/shim.h")
            .clang_args(cflags.iter())
            .clang_arg("-DALLOW_EXPERIMENTAL_API")
            .allowlist_function("hp_.*")
            .allowlist_function(
                "rte_(eal_init|eal_cleanup|strerror|dev_probe|eal_has_hugepages|socket_id|\
                 eth_dev_get_port_by_name|eth_dev_count_avail|eth_dev_socket_id|eth_dev_start|\
                 eth_dev_stop|eth_dev_close|eth_stats_get|eth_stats_reset|eth_from_rings|\
                 mempool_avail_count|ring_create|ring_free|eal_iova_mode|eal_get_runtime_dir|eth_dev_get_name_by_port)",
            )
            .allowlist_type("rte_eth_stats")
            .layout_tests(false)
            .derive_default(true)
            .generate_comments(false)
            .generate();
        let b = match b {
            Ok(b) => b,
            Err(e) => fail(&format!(
                "bindgen could not read the DPDK headers ({e}); libclang-dev must be installed"
            )),
        };
        b.write_to_file(out.join("dpdk_sys.rs"))
            .unwrap_or_else(|e| fail(&format!("cannot write bindings: {e}")));
    }
}
