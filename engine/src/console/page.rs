//! The console's HTML. Every value from a queue, a job or a worker is escaped ([`esc`]);
//! nothing here decides anything — the pages show what the `Queues` service answered.

use crate::wire::{rfc3339, value_to_json};
use prost::Message;
use std::fmt::Write;
use switchyard_proto::wire::{DeadLetter, ListDeadLettersResponse, QueueInfo, QueueStats, WorkerInfo};

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
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

/// `/queue?name=…&…`, every value percent-encoded.
pub fn queue_href(pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("/queue?{}", query.finish())
}

/// The frame of every page: title, navigation, then `body`. `live` pages refresh their
/// `#live` part every 2 s (console.js).
fn layout(title: &str, live: bool, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Switchyard</title><link rel="stylesheet" href="/assets/console.css"></head>
<body{live}><header><a class="brand" href="/">Switchyard</a><nav><a href="/">Queues</a><a href="/workers">Workers</a></nav></header>
<main>{body}</main><script src="/assets/console.js"></script></body></html>
"#,
        title = esc(title),
        live = if live { r#" data-live="2000""# } else { "" },
    )
}

fn stats_of(q: &QueueInfo) -> QueueStats {
    q.stats.unwrap_or_default()
}

/// A queue's numbers in the order every page shows them: label, `data-stat` key, value.
type Stat = (&'static str, &'static str, fn(&QueueStats) -> Option<u64>);
const STATS: [Stat; 8] = [
    ("Ready", "ready", |s| s.ready),
    ("Delayed", "delayed", |s| s.delayed),
    ("In flight", "in_flight", |s| s.in_flight),
    ("Dead", "dead", |s| s.dead),
    ("Enqueued", "enqueued", |s| s.enqueued),
    ("Completed", "completed", |s| s.completed),
    ("Failed attempts", "failed", |s| s.failed),
    ("Dead-lettered", "dead_lettered", |s| s.dead_lettered),
];

pub fn overview(queues: &[QueueInfo]) -> String {
    let mut head = String::from("<th>Queue</th><th>Type</th>");
    for (label, _, _) in STATS {
        let _ = write!(head, r#"<th class="n">{label}</th>"#);
    }
    let mut rows = String::new();
    for q in queues {
        let s = stats_of(q);
        let kind = q.config.as_ref().map(|c| c.r#type.as_str()).unwrap_or("");
        let _ = write!(
            rows,
            r#"<tr data-queue="{name}"><td><a href="{href}">{name}</a></td><td>{kind}</td>"#,
            name = esc(&q.name),
            href = esc(&queue_href(&[("name", &q.name)])),
            kind = esc(kind),
        );
        for (_, key, value) in STATS {
            let v = value(&s).unwrap_or(0);
            let warn = if key == "dead" && v > 0 { " warn" } else { "" };
            let _ = write!(rows, r#"<td class="n{warn}" data-stat="{key}">{v}</td>"#);
        }
        rows.push_str("</tr>");
    }
    let body = format!(
        r#"<h1>Queues</h1><div id="live"><table class="grid"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>
<p class="hint">Ready, delayed, in flight and dead are what the store holds now; the other columns count since the store was created. Refreshed every 2 s.</p>"#
    );
    layout("Queues", true, &body)
}

fn payload_text(d: &DeadLetter) -> String {
    prost_types::Value::decode(d.payload.clone())
        .map(|v| value_to_json(&v).to_string())
        .unwrap_or_else(|_| "(not a JSON value)".into())
}

fn millis(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref().map(|t| rfc3339(t.seconds.max(0) as u64 * 1000 + t.nanos.max(0) as u64 / 1_000_000)).unwrap_or_default()
}

/// A form posting to a console action, confirmed by console.js.
fn action(path: &str, queue: &str, field: (&str, &str), label: &str, confirm: &str, class: &str) -> String {
    format!(
        r#"<form method="post" action="{path}" data-confirm="{confirm}"><input type="hidden" name="name" value="{queue}"><input type="hidden" name="{k}" value="{v}"><button type="submit" class="{class}">{label}</button></form>"#,
        queue = esc(queue),
        k = esc(field.0),
        v = esc(field.1),
        confirm = esc(confirm),
    )
}

pub fn queue(q: &QueueInfo, dead: &ListDeadLettersResponse, notice: Option<&str>) -> String {
    let s = stats_of(q);
    let c = q.config.clone().unwrap_or_default();
    let mut body = format!("<h1>Queue <code>{}</code></h1>", esc(&q.name));
    if let Some(n) = notice.filter(|n| !n.is_empty()) {
        let _ = write!(body, r#"<p class="notice" role="status">{}</p>"#, esc(n));
    }
    body.push_str(r#"<div id="live"><dl class="stats">"#);
    for (label, key, value) in STATS {
        let _ = write!(body, r#"<div><dt>{label}</dt><dd data-stat="{key}">{}</dd></div>"#, value(&s).unwrap_or(0));
    }
    body.push_str("</dl></div>");
    let group = if c.message_group_field.is_empty() {
        String::new()
    } else {
        format!(", group field <code>{}</code>", esc(&c.message_group_field))
    };
    let _ = write!(
        body,
        r#"<p class="config">{kind}{group} · max_retries {} · backoff_ms {} · concurrency {} · timeout_ms {}</p>"#,
        c.max_retries.unwrap_or(0),
        c.backoff_ms,
        c.concurrency,
        c.timeout_ms,
        kind = esc(&c.r#type),
    );
    let _ = write!(body, "<h2>Dead letters</h2>");
    if dead.entries.is_empty() {
        body.push_str(r#"<p class="empty">No dead letters on this page.</p>"#);
    } else {
        let n = s.dead.unwrap_or(0);
        let _ = write!(
            body,
            r#"<div class="bulk">{}{}</div>"#,
            action(
                "/queue/redrive",
                &q.name,
                ("all", "1"),
                &format!("Redrive all {n}"),
                &format!("Redrive all {n} dead letters of '{}'?", q.name),
                "primary"
            ),
            action(
                "/queue/discard",
                &q.name,
                ("all", "1"),
                &format!("Discard all {n}"),
                &format!("Discard all {n} dead letters of '{}' for good?", q.name),
                "danger"
            ),
        );
        body.push_str(r#"<table class="grid dead"><thead><tr><th>Job</th><th>Function</th><th class="n">Attempts</th><th>Last error</th><th>Dead-lettered</th><th>Payload</th><th></th></tr></thead><tbody>"#);
        for d in &dead.entries {
            let e = d.last_error.clone().unwrap_or_default();
            let stack = if e.stack.is_empty() {
                String::new()
            } else {
                format!("<details><summary>stack</summary><pre>{}</pre></details>", esc(&e.stack))
            };
            let _ = write!(
                body,
                r#"<tr data-id="{id}"><td><code>{id}</code>{group}</td><td><code>{function}</code></td><td class="n">{attempts}</td><td class="error"><span class="code">{code}</span> <span class="message">{message}</span>{stack}</td><td class="when">{at}</td><td><code class="payload">{payload}</code></td><td class="actions">{redrive}{discard}</td></tr>"#,
                id = esc(&d.message_receipt_id),
                group = if d.group.is_empty() {
                    String::new()
                } else {
                    format!("<br><small>group {}</small>", esc(&d.group))
                },
                function = esc(&d.function_id),
                attempts = d.attempts,
                code = esc(&e.code),
                message = esc(&e.message),
                at = esc(&millis(&d.dead_lettered_at)),
                payload = esc(&payload_text(d)),
                redrive = action(
                    "/queue/redrive",
                    &q.name,
                    ("id", &d.message_receipt_id),
                    "Redrive",
                    &format!("Redrive job {}?", d.message_receipt_id),
                    "primary"
                ),
                discard = action(
                    "/queue/discard",
                    &q.name,
                    ("id", &d.message_receipt_id),
                    "Discard",
                    &format!("Discard job {} for good?", d.message_receipt_id),
                    "danger"
                ),
            );
        }
        body.push_str("</tbody></table>");
        if !dead.next_page_token.is_empty() {
            let href = queue_href(&[("name", &q.name), ("after", &dead.next_page_token)]);
            let _ = write!(body, r#"<p><a href="{}">Next page →</a></p>"#, esc(&href));
        }
    }
    layout(&format!("Queue {}", q.name), true, &body)
}

pub fn workers(workers: &[WorkerInfo]) -> String {
    let mut body = String::from("<h1>Workers</h1><div id=\"live\">");
    if workers.is_empty() {
        body.push_str(r#"<p class="empty">No worker is connected to this engine.</p>"#);
    } else {
        body.push_str(r#"<table class="grid"><thead><tr><th>Worker</th><th>Name</th><th>SDK</th><th class="n">In flight / max</th><th>Connected</th><th>Functions</th></tr></thead><tbody>"#);
        for w in workers {
            let functions: String = w.functions.iter().map(|f| format!("<li><code>{}</code></li>", esc(f))).collect();
            let _ = write!(
                body,
                r#"<tr data-worker="{id}"><td>{id}</td><td>{name}</td><td>{sdk}</td><td class="n">{}/{}</td><td class="when">{at}</td><td><ul class="functions">{functions}</ul></td></tr>"#,
                w.in_flight,
                w.max_in_flight,
                id = esc(&w.worker_id),
                name = esc(&w.worker_name),
                sdk = esc(format!("{} {}", w.sdk_name, w.sdk_version).trim()),
                at = esc(&millis(&w.connected_at)),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</div>");
    layout("Workers", true, &body)
}

pub fn error(reason: &str, message: &str) -> String {
    let body = format!(
        r#"<h1>{}</h1><p class="notice error" role="alert">{}: {}</p><p><a href="/">All queues</a></p>"#,
        esc(reason),
        esc(reason),
        esc(message)
    );
    layout(reason, false, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_jobs_are_escaped() {
        assert_eq!(esc(r#"<script>"a"&'b'</script>"#), "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;");
    }
}
