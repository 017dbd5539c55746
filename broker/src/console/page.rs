//! The status page, rendered on the server: plain HTML tables (usable without
//! JavaScript), charts as inline SVG, the stylesheet embedded in the binary, and a
//! `refresh` so an open page follows the broker. No asset comes from the network.
//!
//! Every name a client chose (topics, groups, members, client ids) is HTML-escaped.

use std::fmt::Write as _;

use super::http::percent_encode;
use super::rates::Rate;
use super::view::{GroupView, TopicView};
use super::Snapshot;

/// The stylesheet, in the binary.
const STYLE: &str = include_str!("style.css");
/// Seconds between reloads of an open page.
const REFRESH_SECONDS: u32 = 5;

/// `s` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str, cluster: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · sluiced</title><style>{STYLE}</style></head>\
         <body><header><a href=\"/\">sluiced</a><span>cluster {}</span>\
         <a href=\"/metrics\">metrics</a><a href=\"/api/broker\">api</a></header>\
         <main>{body}</main></body></html>\n",
        escape(title),
        escape(cluster)
    )
}

/// Bytes in binary units.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

fn retention(ms: i64, bytes_limit: i64) -> String {
    let time = if ms < 0 { "forever".to_owned() } else { duration(ms as u64) };
    if bytes_limit < 0 {
        time
    } else {
        format!("{time} or {}", bytes(bytes_limit as u64))
    }
}

fn topic_link(name: &str) -> String {
    format!("<a href=\"/topics/{}\">{}</a>", percent_encode(name), escape(name))
}

fn group_link(id: &str) -> String {
    format!("<a href=\"/groups/{}\">{}</a>", percent_encode(id), escape(id))
}

/// An SVG line chart of one series of rates over the last 15 minutes.
fn chart(id: &str, title: &str, rates: &[Rate], value: fn(&Rate) -> f64, now_ms: i64) -> String {
    const W: f64 = 540.0;
    const H: f64 = 140.0;
    const PAD: f64 = 24.0;
    let span_ms = 15.0 * 60.0 * 1000.0;
    let max = rates.iter().map(value).fold(0.0f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let mut points = String::new();
    let mut dots = String::new();
    let mut drawn = 0;
    for r in rates {
        let age = (now_ms - r.at_ms) as f64;
        if age > span_ms {
            continue;
        }
        let x = PAD + (W - 2.0 * PAD) * (1.0 - age / span_ms);
        let y = H - PAD - (H - 2.0 * PAD) * (value(r) / top);
        let _ = write!(points, "{x:.1},{y:.1} ");
        let _ = write!(dots, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\"/>");
        drawn += 1;
    }
    let last = rates.last().map_or(0.0, value);
    format!(
        "<figure><svg class=\"chart\" id=\"{id}\" data-points=\"{drawn}\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{title}\">\
         <text x=\"{PAD}\" y=\"14\">max {max:.1}/s</text>\
         <text x=\"{PAD}\" y=\"{}\">-15 min</text><text x=\"{}\" y=\"{}\">now</text>\
         <polyline points=\"{}\"/>{dots}</svg>\
         <figcaption>{title}: {last:.1}/s now</figcaption></figure>",
        H - 6.0,
        W - PAD - 16.0,
        H - 6.0,
        points.trim_end()
    )
}

fn charts(snap: &Snapshot) -> String {
    let now = snap.rates.last().map_or(0, |r| r.at_ms);
    format!(
        "<section><h2>Rates, last 15 minutes</h2><div class=\"charts\">{}{}{}</div></section>",
        chart("chart-messages-in", "records produced", &snap.rates, |r| r.messages_in, now),
        chart("chart-bytes-in", "bytes produced", &snap.rates, |r| r.bytes_in, now),
        chart("chart-bytes-out", "bytes fetched", &snap.rates, |r| r.bytes_out, now),
    )
}

/// `/`: the broker, rate charts, every topic and every group.
pub fn overview(snap: &Snapshot) -> String {
    let b = &snap.broker;
    let mut body = String::with_capacity(16 * 1024 + snap.topics.len() * 300);
    let disk = match (b.disk_total_bytes, b.disk_free_bytes) {
        (Some(total), Some(free)) => format!("{} free of {}", bytes(free), bytes(total)),
        _ => "unknown".to_owned(),
    };
    let _ = write!(
        body,
        "<h1>Broker {}</h1><section><table id=\"broker\">\
         <tr><th>version</th><td>{}</td></tr><tr><th>uptime</th><td>{}</td></tr>\
         <tr><th>listeners</th><td>{}</td></tr><tr><th>data dir</th><td>{}</td></tr>\
         <tr><th>log bytes</th><td>{}</td></tr><tr><th>disk</th><td>{disk}</td></tr>\
         <tr><th>connections</th><td>{}</td></tr><tr><th>poisoned partitions</th><td{}>{}</td></tr>\
         </table></section>",
        b.node_id,
        escape(b.version),
        duration(b.uptime_ms),
        b.listeners.iter().map(|l| escape(l)).collect::<Vec<_>>().join("<br>"),
        escape(&b.data_dir),
        bytes(b.log_bytes),
        b.connections,
        if b.poisoned_partitions > 0 { " class=\"bad\"" } else { "" },
        b.poisoned_partitions,
    );
    body.push_str(&charts(snap));
    body.push_str(
        "<section><h2>Topics</h2><table id=\"topics\"><tr><th>topic</th><th class=\"num\">partitions</th>\
         <th class=\"num\">records</th><th class=\"num\">size</th><th class=\"num\">records in</th>\
         <th class=\"num\">bytes in</th><th class=\"num\">bytes out</th><th>retention</th></tr>",
    );
    for t in &snap.topics {
        let _ = write!(
            body,
            "<tr data-topic=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&t.name),
            topic_link(&t.name),
            t.partitions.len(),
            t.records(),
            bytes(t.size_bytes()),
            t.totals.messages_in,
            bytes(t.totals.bytes_in),
            bytes(t.totals.bytes_out),
            retention(t.retention_ms, t.retention_bytes),
        );
    }
    body.push_str("</table></section>");
    body.push_str(
        "<section><h2>Consumer groups</h2><table id=\"groups\"><tr><th>group</th><th>state</th>\
         <th class=\"num\">members</th><th class=\"num\">partitions</th><th class=\"num\">lag</th></tr>",
    );
    for g in &snap.groups {
        let _ = write!(
            body,
            "<tr data-group=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num lag\" data-lag=\"{}\">{}</td></tr>",
            escape(&g.group_id),
            group_link(&g.group_id),
            g.state,
            g.members.len(),
            g.offsets.len(),
            g.lag(),
            g.lag(),
        );
    }
    body.push_str("</table></section>");
    document(&format!("broker {}", b.node_id), &body, &b.cluster_id)
}

/// `/topics/NAME`: its config, partitions and the groups that consume it.
pub fn topic(snap: &Snapshot, name: &str) -> Option<String> {
    let t: &TopicView = snap.topics.iter().find(|t| t.name == name)?;
    let mut body = String::with_capacity(8 * 1024 + t.partitions.len() * 256);
    let _ = write!(
        body,
        "<h1>Topic {}</h1><section><table id=\"topic\">\
         <tr><th>topic id</th><td>{}</td></tr><tr><th>partitions</th><td>{}</td></tr>\
         <tr><th>size</th><td>{}</td></tr><tr><th>retention</th><td>{}</td></tr>\
         <tr><th>cleanup.policy</th><td>{}</td></tr>\
         <tr><th>records in / bytes in / bytes out</th><td>{} / {} / {}</td></tr>\
         <tr><th>failed produce / fetch partitions</th><td>{} / {}</td></tr></table></section>",
        escape(&t.name),
        escape(&t.id),
        t.partitions.len(),
        bytes(t.size_bytes()),
        retention(t.retention_ms, t.retention_bytes),
        escape(&t.cleanup_policy),
        t.totals.messages_in,
        bytes(t.totals.bytes_in),
        bytes(t.totals.bytes_out),
        t.totals.failed_produce_requests,
        t.totals.failed_fetch_requests,
    );
    body.push_str(
        "<section><h2>Partitions</h2><table id=\"partitions\"><tr><th class=\"num\">partition</th>\
         <th class=\"num\">log start offset</th><th class=\"num\">log end offset</th>\
         <th class=\"num\">high watermark</th><th class=\"num\">size</th><th class=\"num\">segments</th>\
         <th>state</th></tr>",
    );
    for p in &t.partitions {
        let _ = write!(
            body,
            "<tr data-partition=\"{}\"><td class=\"num\">{}</td><td class=\"num start\">{}</td>\
             <td class=\"num end\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            p.partition,
            p.partition,
            p.log_start_offset,
            p.log_end_offset,
            p.high_watermark,
            bytes(p.size_bytes),
            p.segments,
            if p.poisoned { "<span class=\"bad\">poisoned</span>" } else { "ok" },
        );
    }
    body.push_str("</table></section>");
    body.push_str(
        "<section><h2>Consumer groups</h2><table id=\"topic-groups\"><tr><th>group</th>\
         <th class=\"num\">partition</th><th class=\"num\">committed</th><th class=\"num\">lag</th></tr>",
    );
    for g in &snap.groups {
        for o in g.offsets.iter().filter(|o| o.topic == t.name) {
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num lag\">{}</td></tr>",
                group_link(&g.group_id),
                o.partition,
                o.committed,
                o.lag.map_or("-".to_owned(), |l| l.to_string()),
            );
        }
    }
    body.push_str("</table></section>");
    Some(document(&format!("topic {}", t.name), &body, &snap.broker.cluster_id))
}

/// `/groups/ID`: state, members with their assignments, offsets and lag.
pub fn group(snap: &Snapshot, id: &str) -> Option<String> {
    let g: &GroupView = snap.groups.iter().find(|g| g.group_id == id)?;
    let mut body = String::with_capacity(8 * 1024 + g.offsets.len() * 256);
    let _ = write!(
        body,
        "<h1>Group {}</h1><section><table id=\"group\">\
         <tr><th>state</th><td id=\"group-state\">{}</td></tr>\
         <tr><th>protocol</th><td>{} {}</td></tr><tr><th>members</th><td>{}</td></tr>\
         <tr><th>lag</th><td class=\"lag\" id=\"group-lag\">{}</td></tr></table></section>",
        escape(&g.group_id),
        g.state,
        escape(&g.protocol_type),
        escape(&g.protocol),
        g.members.len(),
        g.lag(),
    );
    body.push_str(
        "<section><h2>Members</h2><table id=\"members\"><tr><th>member</th><th>client id</th>\
         <th>host</th><th>assignment</th></tr>",
    );
    for m in &g.members {
        let assignment: Vec<String> = m
            .assignment
            .iter()
            .map(|(t, ps)| {
                let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                format!("{} [{}]", escape(t), ps.join(", "))
            })
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.member_id),
            escape(&m.client_id),
            escape(&m.client_host),
            assignment.join("<br>"),
        );
    }
    body.push_str("</table></section>");
    body.push_str(
        "<section><h2>Offsets</h2><table id=\"offsets\"><tr><th>topic</th><th class=\"num\">partition</th>\
         <th class=\"num\">committed</th><th class=\"num\">log end offset</th><th class=\"num\">lag</th>\
         <th>member</th></tr>",
    );
    for o in &g.offsets {
        let _ = write!(
            body,
            "<tr data-topic=\"{}\" data-partition=\"{}\"><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num committed\">{}</td><td class=\"num end\">{}</td>\
             <td class=\"num lag\">{}</td><td>{}</td></tr>",
            escape(&o.topic),
            o.partition,
            topic_link(&o.topic),
            o.partition,
            o.committed,
            o.log_end_offset.map_or("-".to_owned(), |e| e.to_string()),
            o.lag.map_or("-".to_owned(), |l| l.to_string()),
            o.member_id.as_deref().map_or(String::new(), escape),
        );
    }
    body.push_str("</table></section>");
    Some(document(&format!("group {}", g.group_id), &body, &snap.broker.cluster_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_sizes_read_as_people_read_them() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(retention(7 * 24 * 3600 * 1000, -1), "168 h 0 min");
        assert_eq!(retention(-1, 1024), "forever or 1.0 KiB");
    }

    #[test]
    fn a_chart_draws_a_point_per_rate_in_the_last_15_minutes() {
        let rate = |at_ms, messages_in| Rate {
            at_ms,
            messages_in,
            bytes_in: 0.0,
            bytes_out: 0.0,
            fetch_requests: 0.0,
        };
        let now = 20 * 60 * 1000;
        let rates = [rate(0, 5.0), rate(now - 20_000, 10.0), rate(now, 20.0)];
        let svg = chart("c", "records", &rates, |r| r.messages_in, now);
        assert!(svg.contains("data-points=\"2\""), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("20.0/s now"));
    }
}
