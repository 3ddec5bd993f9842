//! The streaming client: sends the same streaming request `n` times, one after another, and measures the
//! time to first token: from sending the request to receiving the first event that carries answer text (an
//! SSE `data:` chunk with a non-empty `choices[0].delta.content`, or a Bedrock `contentBlockDelta`
//! event-stream frame). Each answer is read to its end before the next request, and must be complete.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::BytesMut;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

/// The stream format to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamKind {
    /// OpenAI server-sent events.
    Sse,
    /// Bedrock `application/vnd.amazon.eventstream`.
    Eventstream,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct TtftPlan {
    /// The request URL.
    pub url: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The request body (JSON).
    pub body: Vec<u8>,
    /// The stream format.
    pub kind: StreamKind,
    /// Measured requests.
    pub requests: u32,
    /// Requests sent first and not measured.
    pub warmup: u32,
}

/// Percentiles of the time to first token, and of the whole streamed answer, in milliseconds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TtftSummary {
    /// Measured requests that completed.
    pub requests: u64,
    /// Requests that failed (status, cut stream, no text).
    pub errors: u64,
    /// Time to first token, median.
    pub p50_ms: f64,
    /// Time to first token, 90th percentile.
    pub p90_ms: f64,
    /// Time to first token, 99th percentile.
    pub p99_ms: f64,
    /// Time to first token, mean.
    pub mean_ms: f64,
    /// Time to the end of the answer, median.
    pub total_p50_ms: f64,
}

/// Whether `buffer` holds a complete SSE event with answer text; consumes the complete events it reads.
fn sse_has_text(buffer: &mut BytesMut) -> bool {
    while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
        let event = buffer.split_to(end + 2);
        let event = String::from_utf8_lossy(&event);
        for line in event.lines() {
            let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                continue;
            };
            let Ok(chunk) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if chunk
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
            {
                return true;
            }
        }
    }
    false
}

/// Whether `buffer` holds a complete `contentBlockDelta` frame; consumes the complete frames it reads.
fn eventstream_has_text(buffer: &mut BytesMut) -> anyhow::Result<bool> {
    loop {
        if buffer.len() < 4 {
            return Ok(false);
        }
        let total = usize::try_from(u32::from_be_bytes([
            buffer[0], buffer[1], buffer[2], buffer[3],
        ]))?;
        if buffer.len() < total {
            return Ok(false);
        }
        let mut frame = buffer.split_to(total).freeze();
        let message = aws_smithy_eventstream::frame::read_message_from(&mut frame)
            .context("reading an event-stream frame")?;
        let is_delta = message.headers().iter().any(|h| {
            h.name().as_str() == ":event-type"
                && h.value().as_string().ok().map(|s| s.as_str()) == Some("contentBlockDelta")
        });
        if is_delta {
            return Ok(true);
        }
    }
}

/// One streamed request: (time to first token, total time).
async fn one(client: &reqwest::Client, plan: &TtftPlan) -> anyhow::Result<(Duration, Duration)> {
    let mut request = client.post(&plan.url).body(plan.body.clone());
    for (name, value) in &plan.headers {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let response = request.send().await.context("sending")?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "status {status}");
    let mut body = response.bytes_stream();
    let mut buffer = BytesMut::new();
    let mut first = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading the stream")?;
        if first.is_none() {
            buffer.extend_from_slice(&chunk);
            let found = match plan.kind {
                StreamKind::Sse => sse_has_text(&mut buffer),
                StreamKind::Eventstream => eventstream_has_text(&mut buffer)?,
            };
            if found {
                first = Some(started.elapsed());
            }
        }
    }
    let total = started.elapsed();
    let first = first.context("the stream carried no answer text")?;
    Ok((first, total))
}

/// A system that fails this many streamed requests is not measured further.
const MAX_ERRORS: u64 = 5;

fn ms(micros: u64) -> f64 {
    // Microsecond counts in a benchmark stay far below 2^52, so the conversion is exact.
    micros as f64 / 1000.0
}

/// Runs the plan.
pub async fn measure(plan: &TtftPlan) -> anyhow::Result<TtftSummary> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the client")?;
    let mut first = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for i in 0..plan.warmup + plan.requests {
        match one(&client, plan).await {
            Ok((f, t)) if i >= plan.warmup => {
                first.saturating_record(u64::try_from(f.as_micros()).unwrap_or(u64::MAX).max(1));
                total.saturating_record(u64::try_from(t.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            Ok(_) => {}
            Err(err) => {
                errors += 1;
                if errors <= 3 {
                    crate::note(&format!("ttft: request {i} failed: {err:#}"));
                }
                anyhow::ensure!(
                    errors < MAX_ERRORS,
                    "{errors} streamed requests failed; the last: {err:#}"
                );
            }
        }
    }
    Ok(TtftSummary {
        requests: first.len(),
        errors,
        p50_ms: ms(first.value_at_quantile(0.5)),
        p90_ms: ms(first.value_at_quantile(0.9)),
        p99_ms: ms(first.value_at_quantile(0.99)),
        mean_ms: first.mean() / 1000.0,
        total_p50_ms: ms(total.value_at_quantile(0.5)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_text_is_found_only_in_a_complete_content_event() {
        let mut buffer = BytesMut::from(
            &b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"[..],
        );
        assert!(!sse_has_text(&mut buffer));
        buffer.extend_from_slice(b"\n\n");
        assert!(sse_has_text(&mut buffer));
    }

    #[test]
    fn eventstream_text_is_found_in_a_content_block_delta_frame() {
        use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
        let frame = |event: &'static str| {
            let message = Message::new("{}")
                .add_header(Header::new(
                    ":event-type",
                    HeaderValue::String(event.into()),
                ))
                .add_header(Header::new(
                    ":message-type",
                    HeaderValue::String("event".into()),
                ));
            let mut out = Vec::new();
            aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
            out
        };
        let mut buffer = BytesMut::from(&frame("messageStart")[..]);
        assert!(!eventstream_has_text(&mut buffer).unwrap());
        let delta = frame("contentBlockDelta");
        buffer.extend_from_slice(&delta[..10]);
        assert!(!eventstream_has_text(&mut buffer).unwrap());
        buffer.extend_from_slice(&delta[10..]);
        assert!(eventstream_has_text(&mut buffer).unwrap());
    }
}
