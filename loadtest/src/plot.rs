//! `--plot FILE.svg`: the run over time (egress packets/s, server CPU, participants
//! joined, loss) and the histogram of the video latency the window measured.
//!
//! SVG only: the bitmap backend needs a font stack and image encoders this project does
//! not otherwise depend on. Browsers and `rsvg-convert` turn the SVG into a PNG.

use std::path::Path;

use plotters::prelude::*;

use crate::Report;
use crate::measure::TimelinePoint;

const SIZE: (u32, u32) = (1200, 1400);

/// What a time chart shows of each point; `None` leaves a gap.
type Value = fn(&TimelinePoint) -> Option<f64>;

/// Why the chart was not written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("--plot writes SVG only; name the file *.svg (got {0})")]
    NotSvg(String),
    #[error("drawing the chart: {0}")]
    Draw(String),
}

/// Checks the file name before a run, so a long run does not end in a refusal.
pub fn check_path(path: &Path) -> Result<(), PlotError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("svg") => Ok(()),
        _ => Err(PlotError::NotSvg(path.display().to_string())),
    }
}

fn draw_err(err: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(err.to_string())
}

/// Writes the chart of `report` to `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), PlotError> {
    check_path(path)?;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let title = format!(
        "{} — {} participants, {} joined, window {:.0} s",
        report.scenario, report.participants, report.joined, report.window_secs
    );
    let root = root.titled(&title, ("sans-serif", 22)).map_err(draw_err)?;
    let panels = root.split_evenly((4, 2));
    let points = &report.timeline;
    // The measurement window, as dashed lines on every time chart.
    let window = (report.window_secs > 0.0).then_some((
        report.window_at_secs,
        report.window_at_secs + report.window_secs,
    ));
    let series: [(&str, &str, Value, RGBColor); 5] = [
        (
            "egress packets/s",
            "pkt/s",
            |p| Some(p.egress_packets_per_sec),
            BLUE,
        ),
        (
            "server CPU",
            "% of one core",
            |p| Some(p.server_cpu_percent),
            RED,
        ),
        (
            "participants joined",
            "joined",
            |p| Some(p.joined as f64),
            GREEN,
        ),
        (
            "loss of the numbers sent each second",
            "%",
            |p| p.loss_percent,
            MAGENTA,
        ),
        (
            "video latency p99, per second",
            "ms",
            |p| p.video_latency_p99_ms,
            CYAN,
        ),
    ];
    for (area, (caption, unit, value, color)) in panels.iter().zip(series) {
        time_chart(area, points, caption, unit, value, color, window)?;
    }
    latency_chart(&panels[5], report)?;
    summary(&panels[6], report)?;
    root.present().map_err(draw_err)
}

fn time_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[TimelinePoint],
    caption: &str,
    unit: &str,
    value: Value,
    color: RGBColor,
    window: Option<(f64, f64)>,
) -> Result<(), PlotError> {
    let end = points.last().map_or(1.0, |p| p.t_secs).max(1.0);
    let top = points
        .iter()
        .filter_map(value)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.1;
    // Every series is at least zero today; a negative value would still be shown.
    let bottom = points.iter().filter_map(value).fold(0.0f64, f64::min) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, bottom..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("s since start")
        .y_desc(unit)
        .draw()
        .map_err(draw_err)?;
    if let Some((from, to)) = window {
        for x in [from, to] {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, bottom), (x, top)],
                    4,
                    4,
                    BLACK.mix(0.4).stroke_width(1),
                ))
                .map_err(draw_err)?;
        }
    }
    // A missing value (no pair flowing yet) breaks the line rather than drawing zero.
    let mut run = Vec::new();
    for point in points {
        match value(point) {
            Some(v) => run.push((point.t_secs, v)),
            None => {
                draw_line(&mut chart, &mut run, color)?;
            }
        }
    }
    draw_line(&mut chart, &mut run, color)
}

fn draw_line<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    run: &mut Vec<(f64, f64)>,
    color: RGBColor,
) -> Result<(), PlotError> {
    if !run.is_empty() {
        chart
            .draw_series(LineSeries::new(run.drain(..), color.stroke_width(2)))
            .map_err(draw_err)?;
    }
    Ok(())
}

fn latency_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), PlotError> {
    let buckets = &report.latency_histogram;
    let p = &report.video_latency;
    let caption = format!(
        "video latency added (harness view): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p.p50_ms, p.p99_ms, p.max_ms
    );
    // A log time axis shows the body and a tail of seconds at once; the buckets are of
    // equal width on it (~3 %), so their counts are the density.
    let left = buckets.first().map_or(0.1, |b| b.low_ms).max(0.01);
    let right = buckets.last().map_or(1.0, |b| b.high_ms).max(left * 10.0);
    let top = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d((left..right).log_scale(), 0.0..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("ms from send to receive (log)")
        .y_desc("packets per ~3 % bucket")
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(buckets.iter().map(|b| {
            Rectangle::new(
                [(b.low_ms.max(left), 0.0), (b.high_ms, b.count as f64)],
                BLUE.mix(0.6).filled(),
            )
        }))
        .map_err(draw_err)?;
    Ok(())
}

/// The headline figures, as text.
fn summary<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), PlotError> {
    let lines = [
        format!("room {}", report.room),
        format!(
            "joined {}/{} ({} failed), join p99 {:.0} ms",
            report.joined, report.participants, report.join_failures, report.join_time.p99_ms
        ),
        format!(
            "tracks {}/{}, receivers complete {}/{}",
            report.tracks_received,
            report.tracks_expected,
            report.receivers_complete,
            report.receivers
        ),
        format!(
            "egress {:.0} pkt/s, {:.1} Mbit/s",
            report.egress_packets_per_sec,
            report.egress_bitrate_bps / 1e6
        ),
        format!(
            "loss {:.3} % (audio {:.3} %, video {:.3} %)",
            report.loss_ratio * 100.0,
            report.audio_loss_ratio * 100.0,
            report.video_loss_ratio * 100.0
        ),
        format!(
            "server CPU {:.1} %, {:.2} µs per egress packet",
            report.server_cpu_percent, report.cpu_per_egress_packet_micros
        ),
        format!(
            "harness CPU {:.1} %, {:.2} µs per received packet",
            report.harness_cpu_percent, report.harness_cpu_per_received_packet_micros
        ),
        format!(
            "talkers {}, video {}, latency p99 {:.1} ms",
            report.talkers, report.video_codec, report.video_latency.p99_ms
        ),
    ];
    for (i, line) in lines.iter().enumerate() {
        area.draw(&Text::new(
            line.as_str(),
            (30, 40 + 28 * i as i32),
            ("sans-serif", 17),
        ))
        .map_err(draw_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::LatencyBucket;

    #[test]
    fn only_svg_names_are_accepted() {
        for (name, ok) in [
            ("a.svg", true),
            ("b.SVG", true),
            ("c.png", false),
            ("d", false),
        ] {
            assert_eq!(check_path(Path::new(name)).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn a_report_draws_to_svg() {
        let mut report = Report {
            scenario: "meeting-25".to_owned(),
            ..Report::default()
        };
        for t in 1..=12 {
            report.timeline.push(TimelinePoint {
                t_secs: f64::from(t),
                phase: if t > 6 { "measuring" } else { "joining" }.to_owned(),
                joined: (t as usize * 3).min(25),
                egress_packets_per_sec: f64::from(t) * 1000.0,
                server_cpu_percent: 40.0,
                loss_percent: (t > 2).then_some(0.1),
                video_latency_p99_ms: Some(3.0),
            });
        }
        report.latency_histogram = vec![
            LatencyBucket {
                low_ms: 1.0,
                high_ms: 1.1,
                count: 10,
            },
            LatencyBucket {
                low_ms: 2.0,
                high_ms: 2.1,
                count: 30,
            },
        ];
        report.video_latency.p99_ms = 2.0;
        (report.window_at_secs, report.window_secs) = (6.0, 5.0);
        let path = std::env::temp_dir().join(format!("chorus-plot-{}.svg", std::process::id()));
        write_svg(&report, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"));
        for text in [
            "egress packets/s",
            "server CPU",
            "participants joined",
            "video latency",
        ] {
            assert!(svg.contains(text), "no {text}");
        }
        // The two histogram bars and the lines are there.
        assert!(svg.matches("<rect").count() >= 3);
        assert!(svg.contains("<polyline"));
    }
}
