//! The harness report: a Markdown file and SVG plots (plotters' SVG backend;
//! text is written as SVG `<text>`, so no font library is involved).

use super::topo::{HarnessResult, Point, Topology};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

fn ns(v: Option<u64>) -> String {
    match v {
        Some(v) if v >= 1_000_000 => format!("{:.2} ms", v as f64 / 1e6),
        Some(v) if v >= 1_000 => format!("{:.1} µs", v as f64 / 1e3),
        Some(v) => format!("{v} ns"),
        None => "-".into(),
    }
}

fn rows(s: &mut String, pts: &[Point]) {
    let _ = writeln!(
        s,
        "| topology | size | rules | VMs | Mpps | Gbit/s | spread | p50 | p99 | p99.9 | cycles/frame per role | uplink frames per delivered frame |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for p in pts {
        let l = p.median_run.latency.as_ref();
        let cyc: Vec<String> = p
            .median_run
            .cycles_per_frame
            .iter()
            .map(|(r, c)| format!("{r} {c:.0}"))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3}{} | {:.3} | {:.1} %{} | {} | {} | {} | {} | {:.2} |",
            p.topology.name(),
            p.size,
            p.rules,
            p.vms,
            p.mpps,
            if p.generator_limited {
                " (gen-limited)"
            } else {
                ""
            },
            p.gbps,
            p.spread_pct,
            if p.flagged { " ⚠" } else { "" },
            ns(l.map(|x| x.p50_ns)),
            ns(l.map(|x| x.p99_ns)),
            ns(l.map(|x| x.p999_ns)),
            cyc.join(", "),
            p.median_run.uplink_per_frame
        );
    }
}

/// The result tables as Markdown (also what the command prints).
pub fn table(r: &HarnessResult) -> String {
    let mut s = String::new();
    if r.partial {
        s += "**PARTIAL: the run was interrupted.**\n\n";
    }
    rows(&mut s, &r.points);
    if !r.vm_sweep.is_empty() {
        s += "\nVM-count sweep (64 B, no ACLs):\n\n";
        rows(&mut s, &r.vm_sweep);
    }
    if !r.rule_sweep.is_empty() {
        s += "\nRule-count sweep (64 B):\n\n";
        rows(&mut s, &r.rule_sweep);
    }
    s
}

const COLORS: [RGBColor; 4] = [
    RGBColor(200, 40, 40),
    RGBColor(30, 90, 200),
    RGBColor(30, 150, 60),
    RGBColor(140, 60, 160),
];

type Series = (String, Vec<(f64, f64)>);

fn line_plot(
    path: &Path,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
    log_x: bool,
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| format!("{}: {x}", path.display());
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y1) = (1.0, 2.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    let mut b = ChartBuilder::on(&root);
    b.caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut c = $chart;
            c.configure_mesh()
                .x_desc(xl)
                .y_desc(yl)
                .draw()
                .map_err(|x| e(&x))?;
            for (i, (name, v)) in series.iter().enumerate() {
                let col = COLORS[i % COLORS.len()];
                c.draw_series(LineSeries::new(v.iter().copied(), col.stroke_width(2)))
                    .map_err(|x| e(&x))?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
                c.draw_series(v.iter().map(|&p| Circle::new(p, 3, col.filled())))
                    .map_err(|x| e(&x))?;
            }
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|x| e(&x))?;
        }};
    }
    if log_x {
        draw!(b
            .build_cartesian_2d((x0.max(1e-3)..x1).log_scale(), 0.0..y1)
            .map_err(|x| e(&x))?);
    } else {
        draw!(b.build_cartesian_2d(x0..x1, 0.0..y1).map_err(|x| e(&x))?);
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Write `report.md`, `results.json` and the plots into `dir`.
pub fn write(r: &HarnessResult, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let j = serde_json::to_string(r).expect("serialisable");
    std::fs::write(dir.join("results.json"), j).map_err(|e| e.to_string())?;
    let max_rules = r.points.iter().map(|p| p.rules).max().unwrap_or(0);
    // Throughput vs frame size: no ACLs (hairpin, local) and the most rules (hairpin, local-acl).
    let by = |t: Topology, rules: usize| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = r
            .points
            .iter()
            .filter(|p| p.topology == t && p.rules == rules && p.size != "imix")
            .map(|p| (p.mean_size, p.mpps))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let mut s1: Vec<Series> = vec![
        ("hairpin, no ACL".into(), by(Topology::Hairpin, 0)),
        ("local, no ACL".into(), by(Topology::Local, 0)),
    ];
    if max_rules > 0 {
        s1.push((
            format!("hairpin, {max_rules} rules"),
            by(Topology::Hairpin, max_rules),
        ));
        s1.push((
            format!("local-acl, {max_rules} rules"),
            by(Topology::LocalAcl, max_rules),
        ));
    }
    line_plot(
        &dir.join("throughput.svg"),
        "Zero-loss throughput vs frame size",
        "frame size (bytes, with FCS)",
        "Mpps",
        &s1,
        false,
    )?;
    // Latency CDF at 90 % of the throughput, smallest size, no ACLs / most rules.
    let first = r.points.first().map(|p| p.size.clone()).unwrap_or_default();
    let cdf = |t: Topology, rules: usize| -> Option<Series> {
        r.points
            .iter()
            .find(|p| p.topology == t && p.rules == rules && p.size == first)
            .map(|p| {
                (
                    format!("{} {} rules", t.name(), rules),
                    p.median_run
                        .latency_cdf
                        .iter()
                        .map(|&(n, q)| (n as f64 / 1e3, q))
                        .collect(),
                )
            })
    };
    let mut s2: Vec<Series> = [
        cdf(Topology::Hairpin, 0),
        cdf(Topology::Local, 0),
        cdf(Topology::Hairpin, max_rules),
        cdf(Topology::LocalAcl, max_rules),
    ]
    .into_iter()
    .flatten()
    .collect();
    s2.dedup_by(|a, b| a.0 == b.0);
    line_plot(
        &dir.join("latency-cdf.svg"),
        &format!("One-way latency CDF, {first} B, at 90 % of throughput"),
        "latency (µs)",
        "share of frames",
        &s2,
        true,
    )?;
    // Mpps vs rule count: the sweep if run, else the matrix's smallest size.
    let src: Vec<&Point> = if r.rule_sweep.is_empty() {
        r.points.iter().filter(|p| p.size == first).collect()
    } else {
        r.rule_sweep.iter().collect()
    };
    let rules_of = |t: Topology| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = src
            .iter()
            .filter(|p| p.topology == t && p.rules > 0)
            .map(|p| (p.rules as f64, p.mpps))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    line_plot(
        &dir.join("rules.svg"),
        &format!("Zero-loss throughput vs ACL rules, {first} B"),
        "ACL rules",
        "Mpps",
        &[
            (
                "hairpin (ACLs on the bridge)".into(),
                rules_of(Topology::Hairpin),
            ),
            (
                "local-acl (ACLs at the edge)".into(),
                rules_of(Topology::LocalAcl),
            ),
        ],
        true,
    )?;
    let mut md = String::new();
    let _ = writeln!(md, "# hairpin vs local switching: {}\n", r.date);
    let _ = writeln!(md, "- date (UTC): {}", r.date);
    let _ = writeln!(
        md,
        "- commit: {}",
        if r.commit.is_empty() {
            "(not given)"
        } else {
            &r.commit
        }
    );
    let _ = writeln!(md, "- command: `{}`", r.command);
    let _ = writeln!(md, "- machine: {}", r.machine);
    if !r.note.is_empty() {
        let _ = writeln!(md, "- **note:** {}", r.note);
    }
    let _ = writeln!(
        md,
        "- method: RFC 2544 binary search for the highest rate with at most {} % loss ({} s trials, load as a share of one {} line), latency at 90 % of it; {} runs per point, median shown, spread = (max − min) / median, ⚠ above 10 %.",
        r.tolerance_pct, r.trial_s, r.line_rate, r.repeats
    );
    let _ = writeln!(
        md,
        "- all switches on ring ports in one process: every switch task on one worker core, the generator and receiver on the other. \"gen-limited\" marks points where the generator, not the switch, was the limit. \"uplink frames per delivered frame\" counts both directions of the edge's uplink: 2 for hairpin (up and back), 0 for local switching. Above 63 VMs the VMs are spread evenly over ceil(VMs / 63) edges (each with its own uplink, under hairpin each on its own reflective-relay bridge port) and every stream stays inside its edge; the uplink frames are then summed over the edges, and the edge role's cycles/frame is the edges' busy cycles over the frames they received, both summed.\n"
    );
    let _ = writeln!(
        md,
        "![throughput](throughput.svg)\n\n![latency](latency-cdf.svg)\n\n![rules](rules.svg)\n"
    );
    md += &table(r);
    std::fs::write(dir.join("report.md"), md).map_err(|e| e.to_string())?;
    Ok(())
}
