//! How a run's findings are printed: one labelled line each.

use super::{ChurnReport, Percentiles, Report};

/// `p50 … p99 … max … (n=…)`.
fn ms(p: &Percentiles) -> String {
    format!(
        "p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (n={})",
        p.p50_ms, p.p99_ms, p.max_ms, p.count
    )
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.window_secs.max(1e-9);
        writeln!(
            f,
            "scenario             {} in room {} ({} participants, {} with camera, {} receiving)",
            self.scenario, self.room, self.participants, self.video_publishers, self.receivers
        )?;
        writeln!(
            f,
            "joined               {}/{} ({} failed, {} publish failures) in {:.1} s",
            self.joined,
            self.participants,
            self.join_failures,
            self.publish_failures,
            self.join_phase_secs
        )?;
        writeln!(f, "join time            {}", ms(&self.join_time))?;
        writeln!(
            f,
            "first media          {}, {} receivers without media",
            ms(&self.first_media),
            self.receivers_without_media
        )?;
        writeln!(f, "all tracks           {}", ms(&self.all_media))?;
        writeln!(
            f,
            "tracks received      {}/{} pairs; {}/{} receivers complete after {:.1} s",
            self.tracks_received,
            self.tracks_expected,
            self.receivers_complete,
            self.receivers,
            self.media_wait_secs
        )?;
        writeln!(
            f,
            "connections up       {}/{} publisher, {}/{} subscriber (end of window)",
            self.publisher_connections_up,
            self.publishers,
            self.subscriber_connections_up,
            self.receivers
        )?;
        writeln!(f, "window               {:.1} s", self.window_secs)?;
        writeln!(
            f,
            "ingress packets      {} ({:.0}/s)",
            self.ingress_packets,
            self.ingress_packets as f64 / secs
        )?;
        writeln!(
            f,
            "egress packets       {} ({:.0}/s)",
            self.egress_packets, self.egress_packets_per_sec
        )?;
        writeln!(
            f,
            "egress bitrate       {:.2} Mbit/s (RTP payload)",
            self.egress_bitrate_bps / 1e6
        )?;
        writeln!(
            f,
            "loss                 {:.3} % ({} of {} expected packets received; audio {:.3} %, video {:.3} %)",
            self.loss_ratio * 100.0,
            self.received_packets,
            self.expected_packets,
            self.audio_loss_ratio * 100.0,
            self.video_loss_ratio * 100.0
        )?;
        writeln!(
            f,
            "video loss unpaused  {:.3} % (video outside told pauses: {} packets sent while a receiver was told the video was paused left out)",
            self.video_loss_outside_pauses_ratio * 100.0,
            self.video_expected_packets
                .saturating_sub(self.video_expected_outside_pauses)
        )?;
        writeln!(
            f,
            "arrival times        kernel receive time for {} datagrams ({} of them dated later, by {:.1} µs on average), read time for {}",
            self.arrivals_stamped,
            self.arrivals_clamped,
            self.arrivals_clamped_micros as f64 / self.arrivals_clamped.max(1) as f64,
            self.arrivals_unstamped
        )?;
        writeln!(
            f,
            "harness drops        {} datagrams dropped by the kernel on the harness's full sockets (any datagram; as a share of expected packets {:.3} %)",
            self.harness_socket_drops,
            self.harness_socket_drops as f64 * 100.0 / self.expected_packets.max(1) as f64
        )?;
        writeln!(
            f,
            "server CPU           {:.1}% of one core",
            self.server_cpu_percent
        )?;
        writeln!(
            f,
            "harness CPU          {:.1}% of one core (all clients)",
            self.harness_cpu_percent
        )?;
        writeln!(
            f,
            "CPU per egress pkt   {:.2} µs  (per ingress pkt {:.2} µs; both divide all server CPU)",
            self.cpu_per_egress_packet_micros, self.cpu_per_ingress_packet_micros
        )?;
        writeln!(
            f,
            "harness CPU per pkt  {:.2} µs per received packet (all harness CPU)",
            self.harness_cpu_per_received_packet_micros
        )?;
        write!(
            f,
            "server RSS           {:.1} MiB before, {:.1} MiB after, {:.0} KiB per participant",
            self.rss_before_kib as f64 / 1024.0,
            self.rss_after_kib as f64 / 1024.0,
            self.rss_per_participant_kib
        )?;
        write!(
            f,
            "\nvideo latency        {} ({}; kernel receive times)",
            ms(&self.video_latency),
            self.video_codec
        )?;
        if self.simulcast || self.svc || self.view.starts_with("tiles") {
            let layering = match (self.simulcast, self.svc) {
                (true, _) => "simulcast, ",
                (_, true) => "svc L3T3_KEY, ",
                _ => "",
            };
            write!(
                f,
                "\nvideo view           {layering}{}, {} track_settings sent",
                self.view, self.track_settings_sent
            )?;
            let sizes: Vec<String> = self
                .received_sizes
                .iter()
                .map(|(size, n)| format!("{n} × {size}"))
                .collect();
            write!(f, "\nreceived layers      {}", sizes.join(", "))?;
        }
        if let Some(views) = &self.view_bitrates {
            write!(f, "\nview bitrates        {views}")?;
        }
        if let Some(k) = &self.server_skipped {
            write!(
                f,
                "\nserver skipped       {} copies paused for bandwidth, {} datagrams stale (room over its 1 s wait), in the window",
                k.bandwidth_paused, k.stale
            )?;
        }
        write!(f, "\ntalkers              {}", self.talkers)?;
        if self.data_sent > 0 {
            write!(
                f,
                "\ndata messages        {} sent, {} of {} copies delivered, {} lost",
                self.data_sent, self.data_delivered, self.data_expected, self.data_lost
            )?;
        }
        if self.audio_frames_decoded + self.audio_decode_errors > 0 {
            write!(
                f,
                "\ndecoded audio        {} frames, {} with sound, {} refused",
                self.audio_frames_decoded, self.audio_frames_loud, self.audio_decode_errors
            )?;
        }
        for c in &self.capped {
            write!(
                f,
                "\ncapped p{:03}          {} kbit/s cap: video {:.0} kbit/s, {:.1} frames/s, layer {}",
                c.index,
                c.cap_kbps,
                c.video_bitrate_bps / 1e3,
                c.frames_per_sec,
                c.layers.join(", ")
            )?;
        }
        for err in &self.errors {
            write!(f, "\nerror                {err}")?;
        }
        if let Some(churn) = &self.churn {
            write!(f, "\n{churn}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for ChurnReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        writeln!(
            f,
            "churn storms         {} × {} participants within {:.1} s ({:.0} % vanish)",
            self.storms,
            self.per_storm,
            self.storm_secs,
            self.vanish_share * 100.0
        )?;
        writeln!(
            f,
            "churn joins          {} of {} ({} failed); left: {} leave, {} closed socket, {} vanished",
            self.joins_completed,
            self.joins_started,
            self.joins_failed,
            self.left_with_leave,
            self.closed_socket,
            self.vanished
        )?;
        writeln!(f, "churn join time      {}", ms(&self.join_time))?;
        writeln!(
            f,
            "control API          GET /v1/rooms {} ({} failed)",
            ms(&self.api_latency),
            self.api_failures
        )?;
        writeln!(
            f,
            "server RSS           {:.1} MiB at the start, {:.1} MiB at the end",
            mib(self.rss_start_kib),
            mib(self.rss_end_kib)
        )?;
        writeln!(
            f,
            "server tasks         {} at the start, {} at the end",
            self.tasks_start, self.tasks_end
        )?;
        write!(
            f,
            "churn room at end    {} participants, {:.1} s after the last storm",
            self.churn_room_left, self.drain_secs
        )?;
        for s in &self.samples {
            write!(
                f,
                "\n  at {:>6.1} s         RSS {:.1} MiB, {} tasks, {} in the churn room",
                s.at_secs,
                mib(s.rss_kib),
                s.tasks,
                s.churn_participants
            )?;
        }
        for e in &self.errors {
            write!(f, "\nchurn error          {e}")?;
        }
        Ok(())
    }
}
