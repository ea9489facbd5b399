//! The 802.1Qbg control plane with real threads: a worker thread and the
//! control thread running on their own, a hairpin station control plane in
//! the test thread on the cable's far end. Waits (bounded) for the bridge to
//! negotiate RR and install the station's VM in the running data path.

mod qbg_lab;

use hairpin::buf::Pool;
use hairpin::config::Config;
use hairpin::control::plane::ControlPlane;
use hairpin::control::station::StationEvent;
use hairpin::control::store::StaticStore;
use hairpin::control::thread::prepare;
use hairpin::runtime::{self, Instance};
use hairpin::types::PortId;
use hairpin::util::Clock;
use hairpin::wire::vdp::Mode;
use hairpin::worker::WorkerCfg;
use qbg_lab::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn control_thread_and_workers_serve_a_station() {
    let c = Config::parse(&bridge_cfg("reflective_relay = \"negotiate\"", "")).unwrap();
    let pool = Arc::new(Pool::new(2048, 1600).unwrap());
    let mut inst = Instance::new(c, pool.clone()).unwrap();
    let mut p1 = inst.peers[0].take().unwrap().take(0).unwrap();
    let (task, _punt) = inst.task(0).unwrap();
    let wc = WorkerCfg {
        core: None,
        burst: 32,
        idle_sleep_us: 50,
        idle_spin_us: 0,
    };
    let mut wl = vec![(wc, vec![task])];
    let ctl = prepare(&inst, &mut wl, &pool).unwrap().expect("EVB ports");
    let stop = Arc::new(AtomicBool::new(false));
    let clock = Clock::new();
    let running = runtime::start(wl, clock, stop.clone()).unwrap();
    let ctl = ctl.spawn(clock, stop.clone()).unwrap();

    let sc = Config::parse(&station_cfg("")).unwrap();
    let mut st = ControlPlane::new(&sc, Box::new(StaticStore::default()));
    let cell = inst.switch.cell.clone();
    let mut asked = false;
    let mut acked = false;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let now = clock.now_ns();
        let mut out = Vec::new();
        st.tick(now, &mut out);
        while let Some(b) = p1.rx_one() {
            let f = pool.data(&b).to_vec();
            pool.free(b);
            st.rx(now, PortId(0), &f, &mut out);
        }
        if !asked && st.evb(PortId(0)).unwrap().rr_on() {
            st.station_request(
                now,
                PortId(0),
                [0; 16],
                req(Mode::Assoc, 5, UUID_A, A, 0),
                &mut out,
            )
            .unwrap();
            asked = true;
        }
        for (_, f) in out {
            let mut b = pool.alloc().unwrap();
            assert!(pool.fill(&mut b, &f));
            if let Err(b) = p1.tx_one(b) {
                pool.free(b);
            }
        }
        for (_, e) in st.take_events() {
            if let StationEvent::Acked { filters, .. } = e {
                assert_eq!(filters[0].vid, 100);
                acked = true;
            }
        }
        let m = cell.load();
        if acked && m.ports[0].rr && m.policy.vsis.len() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let m = cell.load();
    assert!(m.ports[0].rr, "RR negotiated in the running data path");
    assert!(acked, "the station got its answer");
    assert_eq!(m.policy.vsis.len(), 1);
    assert_eq!(m.policy.vsis[0].mac, A);
    assert_eq!(m.policy.vsis[0].vid, 100);
    stop.store(true, Ordering::Relaxed);
    let tasks = running.join();
    let mut ctl = ctl.join().unwrap();
    ctl.drain_punts();
    let s = ctl.summary();
    assert!(s["snapshots"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["vsis"], 1);
    drop(tasks);
    while let Some(b) = p1.rx_one() {
        pool.free(b);
    }
}
