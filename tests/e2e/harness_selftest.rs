//! Self-tests of the harness: the real AWS SDK clients against `BedrockMock` and `MotoServer`.
//!
//! Every end-to-end test trusts these peers to speak the wire protocols as AWS does, so this module pins
//! down what the others take for granted: the Bedrock Runtime SDK decodes the mock's Converse answers and
//! event streams, maps each injected failure to its modelled error, and its retries show up in the recorded
//! requests; moto answers STS through the real STS client; both peers go away when dropped.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_bedrockruntime::operation::converse::{ConverseError, ConverseOutput};
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole,
    ConverseOutput as ConverseOutputKind, ConverseStreamOutput, GuardrailConfiguration,
    GuardrailStreamConfiguration, InferenceConfiguration, Message, StopReason, SystemContentBlock,
    Tool, ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock,
    ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::event_stream::RawMessage;
use aws_smithy_types::{Document, Number};
use causeway_testkit::bedrock_mock::{
    BedrockMock, ECHO_PREFIX, Failure, Operation, Reply, StreamException, TokenCounts,
};
use causeway_testkit::moto::{MOTO_DEFAULT_ACCOUNT_ID, MotoServer};

/// An inference-profile ARN: its `:` and `/` must survive the path's percent-encoding.
const MODEL_ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";

// === helpers ===

/// A Bedrock Runtime client for the mock with SDK retries off, so each call is exactly one request.
async fn bedrock_client(mock: &BedrockMock) -> aws_sdk_bedrockruntime::Client {
    bedrock_client_with_retries(mock, RetryConfig::disabled()).await
}

async fn bedrock_client_with_retries(
    mock: &BedrockMock,
    retry: RetryConfig,
) -> aws_sdk_bedrockruntime::Client {
    let config = aws_sdk_bedrockruntime::config::Builder::from(&mock.sdk_config().await)
        .retry_config(retry)
        .build();
    aws_sdk_bedrockruntime::Client::from_conf(config)
}

fn user_message(text: &str) -> anyhow::Result<Message> {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.to_owned()))
        .build()
        .context("build a user message")
}

fn assistant_message(text: &str) -> anyhow::Result<Message> {
    Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::Text(text.to_owned()))
        .build()
        .context("build an assistant message")
}

fn answer_text(output: &ConverseOutput) -> anyhow::Result<String> {
    let Some(ConverseOutputKind::Message(message)) = output.output() else {
        bail!("the converse output holds no message: {output:?}");
    };
    Ok(message
        .content()
        .iter()
        .filter_map(|block| block.as_text().ok())
        .map(String::as_str)
        .collect())
}

/// One `Converse` call with a single user message; the outer result is the harness's, the inner the SDK's.
async fn converse(
    client: &aws_sdk_bedrockruntime::Client,
    text: &str,
) -> anyhow::Result<Result<ConverseOutput, SdkError<ConverseError, HttpResponse>>> {
    Ok(client
        .converse()
        .model_id(MODEL_ARN)
        .messages(user_message(text)?)
        .send()
        .await)
}

/// Everything a `ConverseStream` answer carried, in arrival order, each with the moment it arrived.
#[derive(Debug, Default)]
struct StreamTranscript {
    events: Vec<(Instant, ConverseStreamOutput)>,
    error: Option<SdkError<ConverseStreamOutputError, RawMessage>>,
}

impl StreamTranscript {
    fn deltas(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, event)| match event {
                ConverseStreamOutput::ContentBlockDelta(delta) => match delta.delta() {
                    Some(ContentBlockDelta::Text(text)) => Some(text.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.events
            .iter()
            .map(|(_, event)| match event {
                ConverseStreamOutput::MessageStart(_) => "messageStart",
                ConverseStreamOutput::ContentBlockStart(_) => "contentBlockStart",
                ConverseStreamOutput::ContentBlockDelta(_) => "contentBlockDelta",
                ConverseStreamOutput::ContentBlockStop(_) => "contentBlockStop",
                ConverseStreamOutput::MessageStop(_) => "messageStop",
                ConverseStreamOutput::Metadata(_) => "metadata",
                _ => "unknown",
            })
            .collect()
    }
}

async fn converse_stream(
    client: &aws_sdk_bedrockruntime::Client,
    text: &str,
) -> anyhow::Result<StreamTranscript> {
    converse_stream_with(client, text, None).await
}

/// [`converse_stream`], declaring `tools`.
async fn converse_stream_with(
    client: &aws_sdk_bedrockruntime::Client,
    text: &str,
    tools: Option<ToolConfiguration>,
) -> anyhow::Result<StreamTranscript> {
    let mut output = client
        .converse_stream()
        .model_id(MODEL_ARN)
        .messages(user_message(text)?)
        .set_tool_config(tools)
        .send()
        .await
        .context("start converse-stream")?;
    let mut transcript = StreamTranscript::default();
    loop {
        match output.stream.recv().await {
            Ok(Some(event)) => transcript.events.push((Instant::now(), event)),
            Ok(None) => break,
            Err(err) => {
                transcript.error = Some(err);
                break;
            }
        }
    }
    Ok(transcript)
}

fn json_to_document(value: &serde_json::Value) -> Document {
    use serde_json::Value;
    match value {
        Value::Null => Document::Null,
        Value::Bool(flag) => Document::Bool(*flag),
        Value::Number(number) => Document::Number(if let Some(n) = number.as_u64() {
            Number::PosInt(n)
        } else if let Some(n) = number.as_i64() {
            Number::NegInt(n)
        } else {
            Number::Float(number.as_f64().unwrap_or(f64::NAN))
        }),
        Value::String(text) => Document::String(text.clone()),
        Value::Array(items) => Document::Array(items.iter().map(json_to_document).collect()),
        Value::Object(fields) => Document::Object(
            fields
                .iter()
                .map(|(key, field)| (key.clone(), json_to_document(field)))
                .collect(),
        ),
    }
}

/// A `get_weather` tool declaration, as a client sends it in `toolConfig`.
fn weather_tool_config() -> anyhow::Result<ToolConfiguration> {
    let schema = serde_json::json!({
        "type": "object",
        "properties": { "city": { "type": "string" } },
        "required": ["city"],
    });
    let spec = ToolSpecification::builder()
        .name("get_weather")
        .description("the current weather in a city")
        .input_schema(ToolInputSchema::Json(json_to_document(&schema)))
        .build()
        .context("build a tool specification")?;
    ToolConfiguration::builder()
        .tools(Tool::ToolSpec(spec))
        .build()
        .context("build a tool configuration")
}

/// Whether a TCP connection to `endpoint` (an `http://host:port` URL) is refused.
async fn connection_refused(endpoint: &str) -> anyhow::Result<bool> {
    let authority = endpoint
        .strip_prefix("http://")
        .context("the endpoint is an http URL")?;
    Ok(tokio::net::TcpStream::connect(authority).await.is_err())
}

// === Bedrock mock: Converse ===

#[tokio::test(flavor = "multi_thread")]
async fn converse_returns_the_configured_text_and_usage() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.set_reply(Reply::text("the answer is forty two"));
    let client = bedrock_client(&mock).await;

    let output = client
        .converse()
        .model_id(MODEL_ARN)
        .system(SystemContentBlock::Text(
            "answer briefly and politely".to_owned(),
        ))
        .messages(user_message("what is six times seven")?)
        .inference_config(InferenceConfiguration::builder().max_tokens(200).build())
        .guardrail_config(
            GuardrailConfiguration::builder()
                .guardrail_identifier("gr-causeway")
                .guardrail_version("3")
                .build(),
        )
        .send()
        .await?;

    assert_eq!(answer_text(&output)?, "the answer is forty two");
    assert_eq!(output.stop_reason(), &StopReason::EndTurn);
    let usage = output.usage().context("usage")?;
    assert_eq!(usage.input_tokens(), 4 + 5, "system words + user words");
    assert_eq!(usage.output_tokens(), 5);
    assert_eq!(usage.total_tokens(), 14);
    assert!(output.metrics().is_some());

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.operation, Operation::Converse);
    assert_eq!(
        request.model_id, MODEL_ARN,
        "the path's model id is decoded"
    );
    assert!(
        request.path.contains("%3A") && request.path.contains("%2F"),
        "the SDK percent-encodes the ARN in the path: {}",
        request.path
    );
    assert!(request.sigv4_signed, "the SDK signs with SigV4");
    assert_eq!(request.guardrail_identifier(), Some("gr-causeway"));
    assert_eq!(request.guardrail_version(), Some("3"));
    assert_eq!(request.max_tokens(), Some(200));
    assert_eq!(request.system_texts(), vec!["answer briefly and politely"]);
    assert_eq!(
        request.last_user_text().as_deref(),
        Some("what is six times seven")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn converse_echo_shows_what_the_model_received() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    let client = bedrock_client(&mock).await;

    let output = client
        .converse()
        .model_id("anthropic.claude-3-haiku-20240307-v1:0")
        .messages(user_message("first question")?)
        .messages(assistant_message("first answer")?)
        .messages(user_message("<user_input>second question</user_input>")?)
        .send()
        .await?;

    assert_eq!(
        answer_text(&output)?,
        format!("{ECHO_PREFIX}<user_input>second question</user_input>")
    );
    let usage = output.usage().context("usage")?;
    assert_eq!(usage.input_tokens(), 2 + 2 + 2);
    assert_eq!(usage.output_tokens(), 2 + 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn converse_stops_at_max_tokens_and_reports_fixed_counts() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.set_reply(Reply::text("one two three four five"));
    let client = bedrock_client(&mock).await;

    let truncated = client
        .converse()
        .model_id(MODEL_ARN)
        .messages(user_message("count to five")?)
        .inference_config(InferenceConfiguration::builder().max_tokens(3).build())
        .send()
        .await?;
    assert_eq!(answer_text(&truncated)?, "one two three");
    assert_eq!(truncated.stop_reason(), &StopReason::MaxTokens);
    assert_eq!(truncated.usage().context("usage")?.output_tokens(), 3);

    mock.set_token_counts(TokenCounts::Fixed {
        input: 7,
        output: 11,
    });
    let fixed = converse(&client, "count to five").await??;
    let usage = fixed.usage().context("usage")?;
    assert_eq!(
        (
            usage.input_tokens(),
            usage.output_tokens(),
            usage.total_tokens()
        ),
        (7, 11, 18)
    );

    mock.set_reply(Reply::GuardrailIntervened(
        "Sorry, I cannot help with that.".to_owned(),
    ));
    let blocked = converse(&client, "something forbidden").await??;
    assert_eq!(blocked.stop_reason(), &StopReason::GuardrailIntervened);
    assert_eq!(answer_text(&blocked)?, "Sorry, I cannot help with that.");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_delays_the_answer() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.set_latency(Duration::from_millis(300));
    let client = bedrock_client(&mock).await;

    let started = Instant::now();
    let output = converse(&client, "hello").await??;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(output.metrics().context("metrics")?.latency_ms() >= 300);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_bedrock_would_reject_is_a_validation_exception() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    let client = bedrock_client(&mock).await;

    let err = client
        .converse()
        .model_id(MODEL_ARN)
        .messages(assistant_message("I speak first")?)
        .send()
        .await
        .expect_err("a conversation must start with a user message");
    let service_error = err.as_service_error().context("a modelled error")?;
    assert!(service_error.is_validation_exception(), "{service_error:?}");
    assert!(
        service_error
            .message()
            .is_some_and(|message| message.contains("must start with a user message"))
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "rejected requests are recorded too"
    );
    Ok(())
}

// === Bedrock mock: tool use ===

#[tokio::test(flavor = "multi_thread")]
async fn converse_tool_use_returns_the_call_and_stop_reason() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    let arguments =
        serde_json::json!({ "city": "Paris", "unit": "celsius", "days": [1, 2], "hourly": false });
    mock.set_reply(Reply::tool_use("get_weather", arguments.clone()));
    let client = bedrock_client(&mock).await;

    let output = client
        .converse()
        .model_id(MODEL_ARN)
        .messages(user_message("what is the weather in Paris")?)
        .tool_config(weather_tool_config()?)
        .send()
        .await?;

    assert_eq!(output.stop_reason(), &StopReason::ToolUse);
    let Some(ConverseOutputKind::Message(message)) = output.output() else {
        bail!("the converse output holds no message: {output:?}");
    };
    assert_eq!(message.role(), &ConversationRole::Assistant);
    let [ContentBlock::ToolUse(call)] = message.content() else {
        bail!("expected one toolUse block: {:?}", message.content());
    };
    assert_eq!(call.tool_use_id(), "tooluse_mock_1");
    assert_eq!(call.name(), "get_weather");
    assert_eq!(call.input(), &json_to_document(&arguments));
    let usage = output.usage().context("usage")?;
    assert_eq!(usage.input_tokens(), 6);
    assert!(usage.output_tokens() > 0);

    let request = mock.last_request().context("the request is recorded")?;
    assert_eq!(
        request.body.pointer("/toolConfig/tools/0/toolSpec/name"),
        Some(&serde_json::json!("get_weather")),
        "the tool configuration is recorded as sent: {}",
        request.body
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn converse_stream_tool_use_streams_the_arguments_in_fragments() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    let arguments = serde_json::json!({ "city": "San Francisco", "unit": "celsius" });
    let compact = arguments.to_string();
    mock.set_reply(Reply::tool_use("get_weather", arguments));
    mock.set_stream_chunk_chars(7);
    let client = bedrock_client(&mock).await;

    // A first request so the tool-use id shows it counts requests.
    converse(&client, "warm up").await??;
    let transcript = converse_stream_with(
        &client,
        "what is the weather in San Francisco",
        Some(weather_tool_config()?),
    )
    .await?;
    assert!(transcript.error.is_none(), "{:?}", transcript.error);

    let fragments: Vec<String> = transcript
        .events
        .iter()
        .filter_map(|(_, event)| match event {
            ConverseStreamOutput::ContentBlockDelta(delta) => match delta.delta() {
                Some(ContentBlockDelta::ToolUse(tool_use)) => Some(tool_use.input().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let expected_fragments = compact.len().div_ceil(7);
    assert_eq!(fragments.len(), expected_fragments, "{fragments:?}");
    assert!(fragments.len() > 1, "the arguments arrive in pieces");
    assert_eq!(fragments.concat(), compact);
    assert!(transcript.deltas().is_empty(), "no text deltas");

    let mut kinds = vec!["messageStart", "contentBlockStart"];
    kinds.extend(std::iter::repeat_n("contentBlockDelta", expected_fragments));
    kinds.extend(["contentBlockStop", "messageStop", "metadata"]);
    assert_eq!(transcript.kinds(), kinds);

    for (_, event) in &transcript.events {
        match event {
            ConverseStreamOutput::ContentBlockStart(start) => {
                assert_eq!(start.content_block_index(), 0);
                let Some(ContentBlockStart::ToolUse(tool_use)) = start.start() else {
                    bail!("the block start names no tool: {start:?}");
                };
                assert_eq!(tool_use.tool_use_id(), "tooluse_mock_2");
                assert_eq!(tool_use.name(), "get_weather");
            }
            ConverseStreamOutput::ContentBlockDelta(delta) => {
                assert_eq!(delta.content_block_index(), 0);
            }
            ConverseStreamOutput::MessageStop(stop) => {
                assert_eq!(stop.stop_reason(), &StopReason::ToolUse);
            }
            ConverseStreamOutput::Metadata(metadata) => {
                let usage = metadata.usage().context("metadata usage")?;
                assert_eq!(usage.input_tokens(), 7);
                assert!(metadata.metrics().is_some());
            }
            _ => {}
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_result_ends_the_tool_loop_with_text() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.set_reply(Reply::tool_use(
        "get_weather",
        serde_json::json!({ "city": "Paris" }),
    ));
    let client = bedrock_client(&mock).await;

    let question = user_message("what is the weather in Paris")?;
    let first = client
        .converse()
        .model_id(MODEL_ARN)
        .messages(question.clone())
        .tool_config(weather_tool_config()?)
        .send()
        .await?;
    let Some(ConverseOutputKind::Message(call_message)) = first.output() else {
        bail!("the converse output holds no message: {first:?}");
    };
    let [ContentBlock::ToolUse(call)] = call_message.content() else {
        bail!("expected one toolUse block: {:?}", call_message.content());
    };
    let echoed_call = ToolUseBlock::builder()
        .tool_use_id(call.tool_use_id())
        .name(call.name())
        .input(call.input().clone())
        .build()
        .context("build the tool-use block")?;
    let result = ToolResultBlock::builder()
        .tool_use_id(call.tool_use_id())
        .content(ToolResultContentBlock::Text("18 degrees".to_owned()))
        .content(ToolResultContentBlock::Text("light rain".to_owned()))
        .build()
        .context("build the tool-result block")?;
    let result_message = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::ToolResult(result))
        .build()
        .context("build the tool-result message")?;

    let second = client
        .converse()
        .model_id(MODEL_ARN)
        .messages(question.clone())
        .messages(
            Message::builder()
                .role(ConversationRole::Assistant)
                .content(ContentBlock::ToolUse(echoed_call.clone()))
                .build()
                .context("build the tool-call message")?,
        )
        .messages(result_message.clone())
        .tool_config(weather_tool_config()?)
        .send()
        .await?;
    assert_eq!(second.stop_reason(), &StopReason::EndTurn);
    assert_eq!(
        answer_text(&second)?,
        format!("{ECHO_PREFIX}18 degrees\nlight rain")
    );
    let usage = second.usage().context("usage")?;
    assert_eq!(usage.input_tokens(), 6 + 2 + 2, "tool-result text counts");

    let request = mock.last_request().context("the request is recorded")?;
    assert_eq!(
        request
            .body
            .pointer("/messages/1/content/0/toolUse/toolUseId"),
        Some(&serde_json::json!("tooluse_mock_1"))
    );
    assert_eq!(
        request
            .body
            .pointer("/messages/2/content/0/toolResult/content/0/text"),
        Some(&serde_json::json!("18 degrees"))
    );

    // The stream ends the loop the same way.
    let mut output = client
        .converse_stream()
        .model_id(MODEL_ARN)
        .messages(question)
        .messages(
            Message::builder()
                .role(ConversationRole::Assistant)
                .content(ContentBlock::ToolUse(echoed_call))
                .build()
                .context("build the tool-call message")?,
        )
        .messages(result_message)
        .tool_config(weather_tool_config()?)
        .send()
        .await?;
    let mut transcript = StreamTranscript::default();
    while let Some(event) = output.stream.recv().await? {
        transcript.events.push((Instant::now(), event));
    }
    assert_eq!(
        transcript.deltas().concat(),
        format!("{ECHO_PREFIX}18 degrees\nlight rain")
    );
    assert!(transcript.events.iter().any(|(_, event)| matches!(
        event,
        ConverseStreamOutput::MessageStop(stop) if stop.stop_reason() == &StopReason::EndTurn
    )));
    Ok(())
}

// === Bedrock mock: injected failures ===

#[tokio::test(flavor = "multi_thread")]
async fn injected_throttling_surfaces_as_throttling_exception() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.fail_next(1, Failure::Throttling);
    let client = bedrock_client(&mock).await;

    let err = converse(&client, "hello")
        .await?
        .expect_err("the first request is throttled");
    assert_eq!(
        err.raw_response().map(|raw| raw.status().as_u16()),
        Some(429)
    );
    let service_error = err.into_service_error();
    assert!(
        matches!(service_error, ConverseError::ThrottlingException(_)),
        "{service_error:?}"
    );
    assert_eq!(service_error.code(), Some("ThrottlingException"));

    converse(&client, "hello").await??;
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(mock.pending_failures(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_injected_failure_maps_to_its_modelled_error() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    let client = bedrock_client(&mock).await;
    let cases = [
        (Failure::Throttling, 429, "ThrottlingException"),
        (
            Failure::ServiceUnavailable,
            503,
            "ServiceUnavailableException",
        ),
        (Failure::Validation, 400, "ValidationException"),
        (Failure::ModelError, 424, "ModelErrorException"),
        (Failure::ModelTimeout, 408, "ModelTimeoutException"),
        (Failure::ModelNotReady, 429, "ModelNotReadyException"),
        (Failure::AccessDenied, 403, "AccessDeniedException"),
        (Failure::ResourceNotFound, 404, "ResourceNotFoundException"),
        (Failure::InternalServer, 500, "InternalServerException"),
    ];
    for (failure, status, code) in cases {
        mock.fail_next(1, failure);
        let err = converse(&client, "hello")
            .await?
            .expect_err("the injected failure is returned");
        assert_eq!(
            err.raw_response().map(|raw| raw.status().as_u16()),
            Some(status),
            "{failure:?}"
        );
        let service_error = err.into_service_error();
        assert_eq!(service_error.code(), Some(code), "{failure:?}");
        let modelled = match &service_error {
            ConverseError::ThrottlingException(_) => "ThrottlingException",
            ConverseError::ServiceUnavailableException(_) => "ServiceUnavailableException",
            ConverseError::ValidationException(_) => "ValidationException",
            ConverseError::ModelErrorException(inner) => {
                assert_eq!(inner.original_status_code(), Some(500));
                assert_eq!(inner.resource_name(), Some(MODEL_ARN));
                "ModelErrorException"
            }
            ConverseError::ModelTimeoutException(_) => "ModelTimeoutException",
            ConverseError::ModelNotReadyException(_) => "ModelNotReadyException",
            ConverseError::AccessDeniedException(_) => "AccessDeniedException",
            ConverseError::ResourceNotFoundException(_) => "ResourceNotFoundException",
            ConverseError::InternalServerException(_) => "InternalServerException",
            other => bail!("{failure:?} surfaced as an unmodelled error: {other:?}"),
        };
        assert_eq!(modelled, code);
    }
    assert_eq!(mock.requests().len(), cases.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_retries_show_in_the_recorded_requests() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.fail_next(2, Failure::ServiceUnavailable);
    let retry = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1));
    let client = bedrock_client_with_retries(&mock, retry).await;

    let output = converse(&client, "hello after retries").await??;
    assert_eq!(
        answer_text(&output)?,
        format!("{ECHO_PREFIX}hello after retries")
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "two failed attempts and one success");
    assert!(
        requests
            .iter()
            .all(|request| request.body == requests[0].body)
    );
    Ok(())
}

// === Bedrock mock: ConverseStream ===

#[tokio::test(flavor = "multi_thread")]
async fn converse_stream_yields_the_deltas_in_order_then_metadata() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    let answer = "The quick brown fox jumps over the lazy dog";
    mock.set_reply(Reply::text(answer));
    mock.set_stream_chunk_chars(5);
    let client = bedrock_client(&mock).await;

    let mut output = client
        .converse_stream()
        .model_id(MODEL_ARN)
        .messages(user_message("tell me about foxes")?)
        .guardrail_config(
            GuardrailStreamConfiguration::builder()
                .guardrail_identifier("gr-causeway")
                .guardrail_version("DRAFT")
                .build(),
        )
        .send()
        .await?;
    let mut transcript = StreamTranscript::default();
    while let Some(event) = output.stream.recv().await? {
        transcript.events.push((Instant::now(), event));
    }

    let expected: Vec<String> = answer
        .chars()
        .collect::<Vec<_>>()
        .chunks(5)
        .map(|chunk| chunk.iter().collect())
        .collect();
    assert_eq!(transcript.deltas(), expected);
    let mut kinds = vec!["messageStart"];
    kinds.extend(std::iter::repeat_n("contentBlockDelta", expected.len()));
    kinds.extend(["contentBlockStop", "messageStop", "metadata"]);
    assert_eq!(transcript.kinds(), kinds);

    for (_, event) in &transcript.events {
        match event {
            ConverseStreamOutput::MessageStart(start) => {
                assert_eq!(start.role(), &ConversationRole::Assistant);
            }
            ConverseStreamOutput::MessageStop(stop) => {
                assert_eq!(stop.stop_reason(), &StopReason::EndTurn);
            }
            ConverseStreamOutput::Metadata(metadata) => {
                let usage = metadata.usage().context("metadata usage")?;
                assert_eq!(usage.input_tokens(), 4);
                assert_eq!(usage.output_tokens(), 9);
                assert_eq!(usage.total_tokens(), 13);
                assert!(metadata.metrics().is_some());
            }
            _ => {}
        }
    }

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].operation, Operation::ConverseStream);
    assert_eq!(requests[0].model_id, MODEL_ARN);
    assert_eq!(requests[0].guardrail_version(), Some("DRAFT"));
    assert!(requests[0].sigv4_signed);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn converse_stream_frames_arrive_one_by_one() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.set_reply(Reply::text("abcdefghijklmnop"));
    mock.set_stream_chunk_chars(2);
    mock.set_stream_chunk_delay(Duration::from_millis(50));
    let client = bedrock_client(&mock).await;

    let transcript = converse_stream(&client, "stream please").await?;
    assert!(transcript.error.is_none(), "{:?}", transcript.error);
    assert_eq!(transcript.deltas().concat(), "abcdefghijklmnop");
    let (first, _) = transcript.events.first().context("a first event")?;
    let (last, _) = transcript.events.last().context("a last event")?;
    // 12 frames 50 ms apart: a body buffered whole would hand every event over at one instant.
    assert!(
        last.duration_since(*first) >= Duration::from_millis(250),
        "events arrived within {:?}",
        last.duration_since(*first)
    );
    Ok(())
}

/// The wire format itself, read without the SDK: a chunked event-stream body whose frames carry the
/// headers Bedrock sends, and errors with Bedrock's status, `x-amzn-errortype` and JSON `message`.
#[tokio::test(flavor = "multi_thread")]
async fn wire_format_matches_bedrock() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.set_reply(Reply::text("abcdef"));
    mock.set_stream_chunk_chars(3);
    let http = reqwest::Client::new();
    let url = format!(
        "{}/model/mock.model-v1/converse-stream",
        mock.endpoint_url()
    );
    let body =
        serde_json::json!({ "messages": [{ "role": "user", "content": [{ "text": "hi" }] }] });

    let response = http.post(&url).json(&body).send().await?;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/vnd.amazon.eventstream")
    );
    assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"));
    let mut frames = response.bytes().await?;
    let mut event_types = Vec::new();
    while !frames.is_empty() {
        let message = aws_smithy_eventstream::frame::read_message_from(&mut frames)?;
        let header = |name: &str| {
            message
                .headers()
                .iter()
                .find(|header| header.name().as_str() == name)
                .and_then(|header| header.value().as_string().ok())
                .map(|value| value.as_str().to_owned())
        };
        assert_eq!(header(":message-type").as_deref(), Some("event"));
        assert_eq!(header(":content-type").as_deref(), Some("application/json"));
        serde_json::from_slice::<serde_json::Value>(message.payload())?;
        event_types.push(header(":event-type").context("an :event-type header")?);
    }
    assert_eq!(
        event_types,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert!(
        !mock.requests()[0].sigv4_signed,
        "an unsigned request is recorded as such"
    );

    mock.fail_next(1, Failure::Throttling);
    let throttled = http.post(&url).json(&body).send().await?;
    assert_eq!(throttled.status(), 429);
    let error_type = throttled
        .headers()
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert!(
        error_type
            .as_deref()
            .is_some_and(|value| value.starts_with("ThrottlingException:")),
        "{error_type:?}"
    );
    let error_body: serde_json::Value = throttled.json().await?;
    assert!(error_body["message"].is_string(), "{error_body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn converse_stream_injected_failure_fails_the_call() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.fail_next(1, Failure::Throttling);
    let client = bedrock_client(&mock).await;

    let err = client
        .converse_stream()
        .model_id(MODEL_ARN)
        .messages(user_message("hello")?)
        .send()
        .await
        .expect_err("the stream is refused before it starts");
    let service_error = err.into_service_error();
    assert!(service_error.is_throttling_exception(), "{service_error:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn mid_stream_exception_surfaces_from_recv() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    mock.set_reply(Reply::text("0123456789abcdefghij"));
    mock.set_stream_chunk_chars(4);
    let client = bedrock_client(&mock).await;

    for exception in [
        StreamException::ModelStreamError,
        StreamException::Throttling,
    ] {
        mock.fail_next(
            1,
            Failure::MidStream {
                after_deltas: 2,
                exception,
            },
        );
        // A Converse request passes over a mid-stream failure and leaves it queued.
        converse(&client, "not streamed").await??;
        assert_eq!(mock.pending_failures(), 1);

        let transcript = converse_stream(&client, "streamed").await?;
        assert_eq!(transcript.deltas(), vec!["0123", "4567"], "{exception:?}");
        assert_eq!(
            transcript.kinds(),
            vec!["messageStart", "contentBlockDelta", "contentBlockDelta"]
        );
        let err = transcript.error.context("recv returns the exception")?;
        let service_error = err.into_service_error();
        match (exception, &service_error) {
            (
                StreamException::ModelStreamError,
                ConverseStreamOutputError::ModelStreamErrorException(inner),
            ) => {
                assert_eq!(inner.original_status_code(), Some(500));
                assert!(inner.original_message().is_some());
            }
            (StreamException::Throttling, ConverseStreamOutputError::ThrottlingException(_)) => {}
            _ => bail!("{exception:?} surfaced as {service_error:?}"),
        }
        assert_eq!(mock.pending_failures(), 0);
    }

    // The failure was used up: the next stream completes.
    let transcript = converse_stream(&client, "streamed").await?;
    assert!(transcript.error.is_none(), "{:?}", transcript.error);
    assert_eq!(transcript.deltas().concat(), "0123456789abcdefghij");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_mock_stops_the_server() -> anyhow::Result<()> {
    let mock = BedrockMock::start().await?;
    let endpoint = mock.endpoint_url();
    assert!(!connection_refused(&endpoint).await?);
    drop(mock);

    // Graceful shutdown runs on the server task; wait for it to close the listener.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !connection_refused(&endpoint).await? {
        assert!(
            Instant::now() < deadline,
            "the mock still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

// === moto ===

#[tokio::test(flavor = "multi_thread")]
async fn moto_answers_sts_through_the_real_client() -> anyhow::Result<()> {
    let moto = MotoServer::start().await?;
    let config = moto.sdk_config().await;
    let sts = aws_sdk_sts::Client::new(&config);

    let identity = sts.get_caller_identity().send().await?;
    assert_eq!(identity.account(), Some(MOTO_DEFAULT_ACCOUNT_ID));
    assert!(
        identity
            .arn()
            .is_some_and(|arn| arn.starts_with("arn:aws:"))
    );

    let role_arn = format!("arn:aws:iam::{MOTO_DEFAULT_ACCOUNT_ID}:role/causeway-spoke-invoker");
    let assumed = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("harness-selftest")
        .external_id("causeway-external-id")
        .send()
        .await?;
    let credentials = assumed
        .credentials()
        .context("assume-role returns credentials")?;
    assert!(!credentials.access_key_id().is_empty());
    assert!(!credentials.secret_access_key().is_empty());
    assert!(!credentials.session_token().is_empty());

    let assumed_config = aws_sdk_sts::config::Builder::from(&config)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "harness-selftest",
        ))
        .build();
    let as_role = aws_sdk_sts::Client::from_conf(assumed_config)
        .get_caller_identity()
        .send()
        .await?;
    assert_eq!(
        as_role.arn(),
        Some(
            format!(
                "arn:aws:sts::{MOTO_DEFAULT_ACCOUNT_ID}:assumed-role/causeway-spoke-invoker/harness-selftest"
            )
            .as_str()
        )
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_without_its_virtualenv_fails_with_a_clear_message() -> anyhow::Result<()> {
    let empty = tempfile::tempdir()?;
    let err = MotoServer::start_in(empty.path())
        .await
        .expect_err("there is no moto in an empty directory");
    let message = err.to_string();
    assert!(
        message.contains(
            &empty
                .path()
                .join("bin")
                .join("moto_server")
                .display()
                .to_string()
        ),
        "{message}"
    );
    assert!(message.contains("scripts/ensure-moto.sh"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_that_exits_at_once_fails_with_its_log() -> anyhow::Result<()> {
    // A virtualenv whose Python complains on stderr and exits, as a broken install would.
    use std::os::unix::fs::PermissionsExt as _;
    let venv = tempfile::tempdir()?;
    let bin = venv.path().join("bin");
    std::fs::create_dir(&bin)?;
    std::os::unix::fs::symlink("/bin/sh", bin.join("moto_server"))?;
    let python = bin.join("python");
    std::fs::write(
        &python,
        "#!/bin/sh\necho \"broken python: cannot import moto\" >&2\nexit 1\n",
    )?;
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755))?;

    let err = MotoServer::start_in(venv.path())
        .await
        .expect_err("a moto server that exits cannot be ready");
    let message = format!("{err:#}");
    assert!(message.contains("exited"), "{message}");
    assert!(
        message.contains("broken python: cannot import moto"),
        "the log is in the error: {message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_moto_kills_the_process() -> anyhow::Result<()> {
    let moto = MotoServer::start().await?;
    let endpoint = moto.endpoint_url();
    assert!(!connection_refused(&endpoint).await?);
    drop(moto);
    assert!(
        connection_refused(&endpoint).await?,
        "moto still listens after drop"
    );
    Ok(())
}
