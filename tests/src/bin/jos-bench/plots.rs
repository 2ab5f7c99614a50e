//! The plots in `docs/img/`: MD5 time against N, echo round trips and CPU per request, offload
//! costs by phase (plotters, bitmap backend, text in the DejaVu font).

use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use crate::FONT;

/// Registers the plots' font; plotters' ab_glyph backend draws from these bytes only.
pub fn register_font() -> Result<(), String> {
    let bytes =
        std::fs::read(FONT).map_err(|e| format!("{FONT}: {e} (scripts/setup.sh installs fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{FONT}: not a usable font"))
}

/// `docs/img/md5.png`: mean time per run against N, log-log, one line per measured series.
pub fn plot_md5(path: &Path, series: &[(String, Vec<(f64, f64)>)], seed: &[(String, f64)]) -> Result<(), String> {
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max_n = series.iter().flat_map(|(_, p)| p.iter().map(|(n, _)| *n)).fold(10.0, f64::max).max(1e6);
    let all_y = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).chain(seed.iter().map(|(_, y)| *y));
    let (min_y, max_y) = all_y.fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y.max(1e-3)), hi.max(y)));
    let mut chart = ChartBuilder::on(&root)
        .caption("MD5 of \"jon\" N times: time per run (QEMU raspi0, -icount shift=0)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0..max_n * 1.5).log_scale(), (min_y / 2.0..max_y * 2.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("N (hashes)")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| if *v >= 1.0 { format!("{v:.0}") } else { format!("{v}") })
        .y_desc("time per run (ms, guest time)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    let colours = [
        RED,
        BLUE,
        GREEN,
        MAGENTA,
        CYAN,
        RGBColor(230, 130, 0),
        RGBColor(140, 70, 20),
        RGBColor(120, 60, 170),
        RGBColor(0, 120, 120),
        RGBColor(200, 0, 120),
        RGBColor(90, 90, 90),
        RGBColor(150, 150, 0),
    ];
    for (index, (name, points)) in series.iter().enumerate() {
        let colour = colours[index % colours.len()];
        // CPU-time series are dashed with hollow marks, so they stay visible where they coincide
        // with the execution time of the same variant.
        if name.contains("CPU time") {
            chart
                .draw_series(DashedLineSeries::new(points.iter().copied(), 8, 5, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], colour.stroke_width(2)));
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 6, colour.stroke_width(2))))
                .map_err(|e| e.to_string())?;
        } else {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled()))).map_err(|e| e.to_string())?;
        }
    }
    for (index, (name, y)) in seed.iter().enumerate() {
        let colour = [BLACK, RGBColor(130, 130, 130)][index % 2];
        chart
            .draw_series(std::iter::once(TriangleMarker::new((1e6, *y), 8, colour.filled())))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Grouped bars on `area`: one group per name, one bar per kind (`values[name][kind]`).
fn bar_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    names: &[String],
    kinds: &[(&str, RGBColor)],
    values: &[Vec<f64>],
) -> Result<(), String> {
    let max_y = values.iter().flatten().copied().fold(f64::MIN_POSITIVE, f64::max);
    let count = names.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..count, 0.0..max_y * 1.2)
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    let width = 0.7 / kinds.len() as f64;
    for (k, (label, colour)) in kinds.iter().enumerate() {
        let colour = *colour;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.15 + k as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v[k])], colour.filled())
            }))
            .map_err(|e| format!("{e:?}"))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// `docs/img/echo.png`: left, the round trip from the host (mean, p50, p99, in ms) per variant;
/// right, the guest CPU time per request (µs).
pub fn plot_echo(
    path: &Path,
    names: &[String],
    round_trips_ms: &[Vec<f64>],
    cpu_us: &[Vec<f64>],
) -> Result<(), String> {
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(800);
    bar_chart(
        &left,
        "UDP echo of \"Echo1\": round trip from the host (-icount shift=0)",
        "round trip (ms)",
        names,
        &[("mean", BLUE), ("p50", GREEN), ("p99", RED)],
        round_trips_ms,
    )?;
    bar_chart(
        &right,
        "Guest CPU time per request",
        "guest CPU per request (us)",
        names,
        &[("guest CPU", MAGENTA)],
        cpu_us,
    )?;
    root.present().map_err(|e| e.to_string())
}

/// The phases of the offload plot: (label, key in `first_push_10k.mean`, key in `invoke_cached.mean`).
pub const OFFLOAD_PHASES: &[(&str, Option<&str>, &str)] = &[
    ("handshake", Some("handshake_us"), ""),
    ("transfer", Some("transfer_us"), ""),
    ("verify", Some("verify_us"), ""),
    ("queued", Some("job_queued_us"), "queued_us"),
    ("instantiate", Some("job_instantiate_us"), "instantiate_us"),
    ("run", Some("job_run_us"), "run_us"),
    ("result", Some("job_result_us"), "result_us"),
];

/// `docs/img/offload.png`: the device's guest time per phase (log scale, µs) of a first push of
/// a 10 KiB wasm module (with its first run) and of an invoke of the cached module, one bar per
/// phase and kind, each labelled with its value.
pub fn plot_offload(path: &Path, offload: &Value) -> Result<(), String> {
    let first = &offload["first_push_10k"]["mean"];
    let cached = &offload["invoke_cached"]["mean"];
    if offload["first_push_10k"]["status"] != "ok" || offload["invoke_cached"]["status"] != "ok" {
        return Ok(());
    }
    let kinds =
        [("first push of a 10 KiB wasm module, then its first run", BLUE), ("invoke of the cached module", RED)];
    let values: Vec<[Option<f64>; 2]> = OFFLOAD_PHASES
        .iter()
        .map(|(_, push_key, job_key)| {
            let push = push_key.and_then(|k| first[k].as_f64());
            let job = if job_key.is_empty() { None } else { cached[*job_key].as_f64() };
            [push, job]
        })
        .collect();
    let max = values.iter().flatten().flatten().copied().fold(1.0, f64::max);
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let count = OFFLOAD_PHASES.len();
    let mut chart = ChartBuilder::on(&root)
        .caption("Offload costs by phase: device guest time (-icount shift=0)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..count as f64, (1.0..max * 8.0).log_scale())
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < count {
                OFFLOAD_PHASES[i].0.to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("guest time (us, log scale)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    for (k, (label, colour)) in kinds.iter().enumerate() {
        let colour = *colour;
        let bars: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i as f64 + 0.15 + k as f64 * 0.35, v[k]?.max(1.0))))
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x0, y)| Rectangle::new([(x0, 1.0), (x0 + 0.32, y)], colour.filled())))
            .map_err(|e| format!("{e:?}"))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
        chart
            .draw_series(bars.iter().map(|&(x0, y)| {
                Text::new(format!("{y:.0}"), (x0 + 0.02, y * 1.25), ("sans-serif", 13).into_font().color(&BLACK))
            }))
            .map_err(|e| format!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    root.present().map_err(|e| e.to_string())
}
