//! `POST /v1/responses`: the OpenAI Responses door, so the official OpenAI SDKs' `responses.create` works
//! unchanged with `base_url` pointed at the hub. With `stream: true` the answer is the Responses API's
//! server-sent event sequence, each event with its `sequence_number`.
//!
//! The declared purpose comes from the `x-causeway-purpose` header or `defaults.purpose`. The body is mapped to
//! the native content model (what is honoured, accepted without effect and refused is listed in
//! [`causeway_contract::responses`]) and goes through exactly the same governed path as every other door.
//! `instructions` and `system` or `developer` messages are the caller's instructions, placed after the hub's
//! guardrail instructions.
//!
//! The hub keeps no conversation state: every call carries its whole conversation in `input`, and
//! `previous_response_id` and `conversation` are refused with a message saying so. The answer's id is
//! `resp_<audit id>`, and the audit id is also in `x-causeway-audit-id`, on errors too. Errors before an answer
//! starts are the hub's own body, which the OpenAI SDKs raise as the exception class for the status; a stream
//! that fails after it started ends with an `error` event, then `response.failed`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use causeway_contract::content::{ContentBlock, StopReason, ToolChoice, ToolDefinition};
use causeway_contract::responses::{
    self, CausewayExtension, ContentPart, CreateResponseRequest, FunctionCallItem,
    FunctionCallOutputItem, InputItem, InputMessage, InputRole, ItemStatus, OutputContent,
    OutputItem, ResponseError, ResponseObject, ResponseStatus, SequencedEvent, StreamEvent,
    TextConfig, TextOr, Tool, ToolChoiceParam, Usage,
};
use causeway_contract::{InvokeRequest, Message, Role, TokenUsage};
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::extract::{Authenticated, JsonBody, call_meta, declared_purpose};
use super::{AUDIT_ID_HEADER, parts};
use crate::auth::Caller;
use crate::error::{ApiError, HubError};
use crate::governed::{self, Delivery, Governed, StreamItem};
use crate::state::AppState;

// === request ===

fn invalid<T>(message: String) -> Result<T, HubError> {
    Err(HubError::InvalidRequest(message))
}

fn image_block(
    image_url: Option<String>,
    file_id: Option<String>,
    at: &str,
) -> Result<ContentBlock, HubError> {
    let Some(url) = image_url else {
        if file_id.is_some() {
            return invalid(format!(
                "`{at}.file_id` is not supported (the hub keeps no files): send the image bytes as a `data:` URI in `image_url`"
            ));
        }
        return invalid(format!("`{at}.image_url` is required"));
    };
    parts::image(&url, &format!("{at}.image_url"))
}

fn file_block(
    file_data: Option<String>,
    file_id: Option<String>,
    file_url: Option<String>,
    filename: Option<String>,
    at: &str,
) -> Result<ContentBlock, HubError> {
    let Some(uri) = file_data else {
        if file_url.is_some() {
            return invalid(format!(
                "`{at}.file_url` is not supported: send the file's bytes as a `data:` URI in `file_data`; the hub fetches nothing on a caller's behalf"
            ));
        }
        if file_id.is_some() {
            return invalid(format!(
                "`{at}.file_id` is not supported (the hub keeps no files): send the file's bytes as a `data:` URI in `file_data`"
            ));
        }
        return invalid(format!("`{at}.file_data` is required"));
    };
    parts::document(&uri, filename.as_deref(), &format!("{at}.file_data"))
}

/// Where a content part is, which decides what it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartOf {
    /// A message with this role.
    Message(InputRole),
    /// The output of a function call.
    FunctionOutput,
}

fn part_block(part: ContentPart, of: PartOf, at: &str) -> Result<ContentBlock, HubError> {
    let kind = match &part {
        ContentPart::InputText { .. } => "input_text",
        ContentPart::InputImage { .. } => "input_image",
        ContentPart::InputFile { .. } => "input_file",
        ContentPart::OutputText { .. } => "output_text",
        ContentPart::Refusal { .. } => "refusal",
    };
    let allowed = match of {
        PartOf::Message(InputRole::User) | PartOf::FunctionOutput => {
            ["input_text", "input_image", "input_file"].contains(&kind)
        }
        PartOf::Message(InputRole::Assistant) => {
            ["output_text", "refusal", "input_text"].contains(&kind)
        }
        PartOf::Message(InputRole::System | InputRole::Developer) => kind == "input_text",
    };
    if !allowed {
        let holds = match of {
            PartOf::Message(InputRole::User) => {
                "`user` messages hold `input_text`, `input_image` and `input_file` parts"
            }
            PartOf::FunctionOutput => {
                "a function call's output holds `input_text`, `input_image` and `input_file` parts"
            }
            PartOf::Message(InputRole::Assistant) => {
                "`assistant` messages hold `output_text` and `refusal` parts"
            }
            PartOf::Message(InputRole::System | InputRole::Developer) => {
                "`system` and `developer` messages hold `input_text` parts"
            }
        };
        return invalid(format!("`{at}.type` `{kind}` is not allowed here: {holds}"));
    }
    match part {
        ContentPart::InputText { text } | ContentPart::OutputText { text } => {
            Ok(ContentBlock::text(text))
        }
        ContentPart::Refusal { refusal } => Ok(ContentBlock::text(refusal)),
        ContentPart::InputImage {
            image_url, file_id, ..
        } => image_block(image_url, file_id, at),
        ContentPart::InputFile {
            file_data,
            file_id,
            file_url,
            filename,
        } => file_block(file_data, file_id, file_url, filename, at),
    }
}

fn parts(
    content: TextOr<ContentPart>,
    of: PartOf,
    at: &str,
) -> Result<Vec<ContentBlock>, HubError> {
    match content {
        TextOr::Text(text) if text.is_empty() => Ok(Vec::new()),
        TextOr::Text(text) => Ok(vec![ContentBlock::text(text)]),
        TextOr::Blocks(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| part_block(part, of, &format!("{at}[{j}]")))
            .collect(),
    }
}

/// Appends `blocks` to the last message when it has `role` and `joins` says it may take them; otherwise
/// starts a new message.
fn push_blocks(
    messages: &mut Vec<Message>,
    role: Role,
    blocks: Vec<ContentBlock>,
    joins: impl Fn(&Message) -> bool,
) {
    match messages.last_mut() {
        Some(last) if last.role == role && joins(last) => last.content.extend(blocks),
        _ => messages.push(Message {
            role,
            content: blocks,
        }),
    }
}

fn is_tool_result(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::ToolResult { .. })
}

/// `input` as the conversation. Function calls join the assistant turn before them, and consecutive function
/// outputs make one user turn of results.
fn conversation(input: TextOr<InputItem>) -> Result<Vec<Message>, HubError> {
    let items = match input {
        TextOr::Text(text) => return Ok(vec![Message::text(Role::User, text)]),
        TextOr::Blocks(items) => items,
    };
    let mut messages: Vec<Message> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            InputItem::Message(InputMessage { role, content }) => {
                let at = format!("input[{i}].content");
                let mut blocks = parts(content, PartOf::Message(role), &at)?;
                let role = match role {
                    InputRole::User => Role::User,
                    InputRole::Assistant => Role::Assistant,
                    InputRole::System | InputRole::Developer => Role::System,
                };
                if role == Role::Assistant {
                    blocks.retain(|b| b.as_text().is_none_or(|t| !t.is_empty()));
                    if !blocks.is_empty() {
                        push_blocks(&mut messages, role, blocks, |_| true);
                    }
                    continue;
                }
                if blocks.is_empty() {
                    return invalid(format!("`{at}` is required"));
                }
                messages.push(Message {
                    role,
                    content: blocks,
                });
            }
            InputItem::FunctionCall(FunctionCallItem {
                call_id,
                name,
                arguments,
            }) => {
                let input = if arguments.trim().is_empty() {
                    serde_json::json!({})
                } else {
                    serde_json::from_str::<serde_json::Value>(&arguments)
                        .ok()
                        .filter(serde_json::Value::is_object)
                        .ok_or_else(|| {
                            HubError::InvalidRequest(format!(
                                "`input[{i}].arguments` must be a JSON object"
                            ))
                        })?
                };
                let call = ContentBlock::ToolUse {
                    id: call_id,
                    name,
                    input,
                };
                push_blocks(&mut messages, Role::Assistant, vec![call], |_| true);
            }
            InputItem::FunctionCallOutput(FunctionCallOutputItem { call_id, output }) => {
                let result = ContentBlock::ToolResult {
                    tool_use_id: call_id,
                    content: parts(
                        output,
                        PartOf::FunctionOutput,
                        &format!("input[{i}].output"),
                    )?,
                    is_error: false,
                };
                push_blocks(&mut messages, Role::User, vec![result], |last| {
                    last.content.iter().all(is_tool_result)
                });
            }
            // Reasoning items hold another model's thinking in an earlier turn (the hub's answers carry none);
            // the conversation the model sees is the turns' messages and function calls.
            InputItem::Reasoning => {}
            InputItem::ItemReference { id } => {
                return invalid(format!(
                    "`input[{i}]` refers to the stored item `{id}`: the hub keeps no conversation state; send the item itself"
                ));
            }
            InputItem::Unsupported { kind } => {
                return invalid(format!(
                    "`input[{i}].type` `{kind}` is not supported: the hub runs only function tools; send `message`, `function_call` and `function_call_output` items"
                ));
            }
        }
    }
    Ok(messages)
}

fn to_tools(tools: &[Tool]) -> Result<Vec<ToolDefinition>, HubError> {
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            if tool.kind != "function" {
                return invalid(format!(
                    "`tools[{i}].type` `{}` is not supported: the hub runs no built-in tools (web search, file search, computer use, code interpreter, image generation, MCP, shell, custom tools); offer `function` tools your application runs",
                    tool.kind
                ));
            }
            let Some(name) = tool.name.clone() else {
                return invalid(format!("`tools[{i}].name` is required"));
            };
            Ok(ToolDefinition {
                name,
                description: tool.description.clone(),
                input_schema: tool
                    .parameters
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

fn to_tool_choice(choice: Option<&ToolChoiceParam>) -> Result<Option<ToolChoice>, HubError> {
    match choice {
        None => Ok(None),
        Some(ToolChoiceParam::Mode(mode)) => match mode.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "required" => Ok(Some(ToolChoice::Any)),
            "none" => Ok(Some(ToolChoice::None)),
            other => invalid(format!(
                "`tool_choice` `{other}` is not supported; use `auto`, `required`, `none` or a named function"
            )),
        },
        Some(ToolChoiceParam::Named { kind, name }) => match (kind.as_str(), name) {
            ("function", Some(name)) => Ok(Some(ToolChoice::Tool { name: name.clone() })),
            ("function", None) => invalid("`tool_choice.name` is required".to_owned()),
            (other, _) => invalid(format!(
                "`tool_choice.type` `{other}` is not supported; use `auto`, `required`, `none` or `{{\"type\":\"function\",\"name\":…}}`"
            )),
        },
    }
}

/// `text.format` as the call's response schema.
fn response_schema(text: Option<&TextConfig>) -> Result<Option<serde_json::Value>, HubError> {
    let Some(format) = text.and_then(|t| t.format.as_ref()) else {
        return Ok(None);
    };
    match format.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(serde_json::json!({"type": "object"}))),
        "json_schema" => match &format.schema {
            Some(schema) => Ok(Some(schema.clone())),
            None => invalid("`text.format.schema` is required".to_owned()),
        },
        other => invalid(format!(
            "`text.format.type` `{other}` is not supported; use `text`, `json_object` or `json_schema`"
        )),
    }
}

/// A request mapped to a native call: the call, the response object it is answered with (the request's
/// settings echoed, no output yet), and whether it is streamed.
#[derive(Debug)]
struct Mapped {
    native: InvokeRequest,
    template: ResponseObject,
    stream: bool,
}

fn to_native(req: CreateResponseRequest, purpose: String) -> Result<Mapped, HubError> {
    let stateless = "the hub keeps no conversation state; send the conversation so far in `input`";
    let refused = [
        (
            "previous_response_id",
            req.previous_response_id.is_some(),
            stateless,
        ),
        ("conversation", req.conversation.is_some(), stateless),
        (
            "background",
            req.background == Some(true),
            "the hub answers while the request is open; use `stream: true` for long answers",
        ),
        (
            "prompt",
            req.prompt.is_some(),
            "the hub keeps no prompt templates; send the instructions and input themselves",
        ),
        (
            "context_management",
            req.context_management.is_some(),
            "send the conversation as the model should see it",
        ),
        (
            "moderation",
            req.moderation.is_some(),
            "the hub's guards check every call and report what they did in `causeway.guards`",
        ),
    ];
    if let Some((field, _, why)) = refused.iter().find(|(_, present, _)| *present) {
        return invalid(format!("`{field}` is not supported: {why}"));
    }
    let Some(input) = req.input else {
        return invalid("`input` is required: the hub keeps no conversation state".to_owned());
    };
    let mut messages = conversation(input)?;
    // The instructions go after the conversation, so `messages[i]` in any error the governed path names is
    // the conversation's; the prompt places system instructions apart from it wherever they are.
    if let Some(instructions) = req.instructions.as_deref().filter(|i| !i.trim().is_empty()) {
        messages.push(Message::text(Role::System, instructions));
    }
    let tools = req.tools.unwrap_or_default();
    let native = InvokeRequest {
        model: req.model.clone(),
        purpose,
        messages,
        tools: to_tools(&tools)?,
        tool_choice: to_tool_choice(req.tool_choice.as_ref())?,
        max_tokens: req.max_output_tokens,
        stop_sequences: Vec::new(),
        response_schema: response_schema(req.text.as_ref())?,
        context: None,
    };
    let template = ResponseObject {
        id: String::new(),
        object: "response".to_owned(),
        created_at: 0,
        status: ResponseStatus::InProgress,
        completed_at: None,
        error: None,
        incomplete_details: None,
        instructions: req.instructions,
        max_output_tokens: req.max_output_tokens,
        model: req.model,
        output: Vec::new(),
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        previous_response_id: None,
        store: false,
        background: false,
        temperature: req.temperature,
        top_p: req.top_p,
        text: req.text.unwrap_or_default(),
        tool_choice: req.tool_choice.unwrap_or_default(),
        tools,
        truncation: req.truncation.unwrap_or_else(|| "disabled".to_owned()),
        usage: None,
        user: req.user,
        metadata: req.metadata.unwrap_or_default(),
        causeway: None,
    };
    Ok(Mapped {
        native,
        template,
        stream: req.stream.unwrap_or(false),
    })
}

// === answer ===

fn response_id(audit_id: Uuid) -> String {
    format!("resp_{}", audit_id.simple())
}

/// The id of the output item at `index` of the answer recorded as `audit_id`: `msg_…` or `fc_…`.
fn item_id(prefix: &str, audit_id: Uuid, index: usize) -> String {
    format!("{prefix}_{}_{index}", audit_id.simple())
}

/// The status of the answer's last message: cut short when the response is incomplete.
fn text_status(status: ResponseStatus) -> ItemStatus {
    if status == ResponseStatus::Incomplete {
        ItemStatus::Incomplete
    } else {
        ItemStatus::Completed
    }
}

fn usage(u: TokenUsage) -> Usage {
    Usage::new(u.input_tokens, u.output_tokens)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The answer's blocks as output items: each run of text one message, each tool call a function call. A
/// message that ends the answer has the status `last_text`.
fn output_items(
    content: Vec<ContentBlock>,
    audit_id: Uuid,
    last_text: ItemStatus,
) -> Vec<OutputItem> {
    let mut items: Vec<OutputItem> = Vec::new();
    for block in content {
        match block {
            ContentBlock::Text { text } if text.is_empty() => {}
            ContentBlock::Text { text } => {
                if let Some(OutputItem::Message { content, .. }) = items.last_mut()
                    && let Some(OutputContent::OutputText { text: joined, .. }) = content.last_mut()
                {
                    joined.push_str(&text);
                    continue;
                }
                items.push(OutputItem::Message {
                    id: item_id("msg", audit_id, items.len()),
                    status: ItemStatus::Completed,
                    role: "assistant".to_owned(),
                    content: vec![OutputContent::text(text)],
                });
            }
            ContentBlock::ToolUse { id, name, input } => items.push(OutputItem::FunctionCall {
                id: item_id("fc", audit_id, items.len()),
                call_id: id,
                name,
                arguments: input.to_string(),
                status: ItemStatus::Completed,
            }),
            _ => {}
        }
    }
    if let Some(OutputItem::Message { status, .. }) = items.last_mut() {
        *status = last_text;
    }
    items
}

fn with_audit_id(mut response: Response, audit_id: Option<Uuid>) -> Response {
    if let Some(id) = audit_id.and_then(|id| HeaderValue::from_str(&id.to_string()).ok()) {
        response.headers_mut().insert(AUDIT_ID_HEADER, id);
    }
    response
}

// === streams ===

/// A message whose text is streaming.
#[derive(Debug)]
struct OpenText {
    output_index: u32,
    item_id: String,
    text: String,
}

/// Turns governed stream items into the Responses API's events, numbered from 0. Text has no item boundaries
/// in the governed stream: a message opens at the first text and closes when a function call is added or the
/// answer ends. A function call is added when its arguments are complete (the governed stream sends them
/// whole, after guarding), so items never interleave.
#[derive(Debug)]
struct OutputEvents {
    audit_id: Uuid,
    /// The response so far: the request's settings and the items that are done.
    response: ResponseObject,
    sequence: u64,
    text: Option<OpenText>,
    /// Tools started and awaiting their arguments: (the governed stream's tool index, call id, name).
    started: Vec<(u32, String, String)>,
}

impl OutputEvents {
    fn new(audit_id: Uuid, response: ResponseObject) -> Self {
        Self {
            audit_id,
            response,
            sequence: 0,
            text: None,
            started: Vec::new(),
        }
    }

    fn emit(&mut self, out: &mut Vec<SequencedEvent>, event: StreamEvent) {
        out.push(SequencedEvent {
            event,
            sequence_number: self.sequence,
        });
        self.sequence += 1;
    }

    fn next_index(&self) -> u32 {
        u32::try_from(self.response.output.len()).unwrap_or(u32::MAX)
    }

    /// `response.created` and `response.in_progress`.
    fn opening(&mut self) -> Vec<SequencedEvent> {
        let mut out = Vec::new();
        let response = Box::new(self.response.clone());
        self.emit(
            &mut out,
            StreamEvent::Created {
                response: response.clone(),
            },
        );
        self.emit(&mut out, StreamEvent::InProgress { response });
        out
    }

    fn close_text(&mut self, status: ItemStatus, out: &mut Vec<SequencedEvent>) {
        let Some(OpenText {
            output_index,
            item_id,
            text,
        }) = self.text.take()
        else {
            return;
        };
        self.emit(
            out,
            StreamEvent::OutputTextDone {
                item_id: item_id.clone(),
                output_index,
                content_index: 0,
                text: text.clone(),
                logprobs: Vec::new(),
            },
        );
        self.emit(
            out,
            StreamEvent::ContentPartDone {
                item_id: item_id.clone(),
                output_index,
                content_index: 0,
                part: OutputContent::text(text.clone()),
            },
        );
        let item = OutputItem::Message {
            id: item_id,
            status,
            role: "assistant".to_owned(),
            content: vec![OutputContent::text(text)],
        };
        self.emit(
            out,
            StreamEvent::OutputItemDone {
                output_index,
                item: item.clone(),
            },
        );
        self.response.output.push(item);
    }

    fn text(&mut self, delta: String, out: &mut Vec<SequencedEvent>) {
        if self.text.is_none() {
            let output_index = self.next_index();
            let item_id = item_id("msg", self.audit_id, self.response.output.len());
            self.emit(
                out,
                StreamEvent::OutputItemAdded {
                    output_index,
                    item: OutputItem::Message {
                        id: item_id.clone(),
                        status: ItemStatus::InProgress,
                        role: "assistant".to_owned(),
                        content: Vec::new(),
                    },
                },
            );
            self.emit(
                out,
                StreamEvent::ContentPartAdded {
                    item_id: item_id.clone(),
                    output_index,
                    content_index: 0,
                    part: OutputContent::text(""),
                },
            );
            self.text = Some(OpenText {
                output_index,
                item_id,
                text: String::new(),
            });
        }
        let Some(open) = self.text.as_mut() else {
            return;
        };
        open.text.push_str(&delta);
        let (item_id, output_index) = (open.item_id.clone(), open.output_index);
        self.emit(
            out,
            StreamEvent::OutputTextDelta {
                item_id,
                output_index,
                content_index: 0,
                delta,
                logprobs: Vec::new(),
            },
        );
    }

    fn function_call(
        &mut self,
        call_id: String,
        name: String,
        arguments: String,
        out: &mut Vec<SequencedEvent>,
    ) {
        self.close_text(ItemStatus::Completed, out);
        let output_index = self.next_index();
        let item_id = item_id("fc", self.audit_id, self.response.output.len());
        let item = |arguments: String, status| OutputItem::FunctionCall {
            id: item_id.clone(),
            call_id: call_id.clone(),
            name: name.clone(),
            arguments,
            status,
        };
        self.emit(
            out,
            StreamEvent::OutputItemAdded {
                output_index,
                item: item(String::new(), ItemStatus::InProgress),
            },
        );
        self.emit(
            out,
            StreamEvent::FunctionCallArgumentsDelta {
                item_id: item_id.clone(),
                output_index,
                delta: arguments.clone(),
            },
        );
        self.emit(
            out,
            StreamEvent::FunctionCallArgumentsDone {
                item_id: item_id.clone(),
                output_index,
                name: name.clone(),
                arguments: arguments.clone(),
            },
        );
        let done = item(arguments, ItemStatus::Completed);
        self.emit(
            out,
            StreamEvent::OutputItemDone {
                output_index,
                item: done.clone(),
            },
        );
        self.response.output.push(done);
    }

    fn translate(&mut self, item: StreamItem) -> Vec<SequencedEvent> {
        let mut out = Vec::new();
        match item {
            StreamItem::Text(text) if text.is_empty() => {}
            StreamItem::Text(text) => self.text(text, &mut out),
            StreamItem::ToolUseStart { index, id, name } => self.started.push((index, id, name)),
            StreamItem::ToolInput { index, json } => {
                if let Some(at) = self.started.iter().position(|(i, _, _)| *i == index) {
                    let (_, call_id, name) = self.started.remove(at);
                    self.function_call(call_id, name, json, &mut out);
                }
            }
            StreamItem::Done {
                stop_reason,
                usage: u,
                guards,
            } => {
                let (status, incomplete) = responses::status_for(stop_reason);
                self.close_text(text_status(status), &mut out);
                self.response.status = status;
                self.response.incomplete_details = incomplete;
                self.response.usage = Some(usage(u));
                if status == ResponseStatus::Completed {
                    self.response.completed_at = Some(now());
                }
                if let Some(causeway) = self.response.causeway.as_mut() {
                    causeway.guards = Some(*guards);
                }
                let response = Box::new(self.response.clone());
                let event = if status == ResponseStatus::Completed {
                    StreamEvent::Completed { response }
                } else {
                    StreamEvent::Incomplete { response }
                };
                self.emit(&mut out, event);
            }
            StreamItem::Failed(err) => {
                self.close_text(ItemStatus::Incomplete, &mut out);
                let code = err.error.code();
                let message = err.error.public_message();
                self.emit(
                    &mut out,
                    StreamEvent::Error {
                        code: Some(code.as_str().to_owned()),
                        message: message.clone(),
                        param: None,
                        audit_id: err.audit_id.map(|a| a.to_string()),
                    },
                );
                self.response.status = ResponseStatus::Failed;
                self.response.error = Some(ResponseError {
                    code: responses::failure_code(code).to_owned(),
                    message,
                });
                let response = Box::new(self.response.clone());
                self.emit(&mut out, StreamEvent::Failed { response });
            }
        }
        out
    }
}

fn sse(event: &SequencedEvent) -> Event {
    Event::default()
        .event(event.event.name())
        .data(serde_json::to_string(event).unwrap_or_default())
}

// === handler ===

/// OpenAI Responses call through the governed path; the audit id goes in `x-causeway-audit-id` whatever the
/// outcome.
pub async fn responses_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<CreateResponseRequest>,
) -> Response {
    match respond(state, headers, caller, request).await {
        Ok(response) => response,
        Err(err) => {
            let audit_id = err.audit_id;
            with_audit_id(err.into_response(), audit_id)
        }
    }
}

async fn respond(
    state: Arc<AppState>,
    headers: HeaderMap,
    caller: Caller,
    request: CreateResponseRequest,
) -> Result<Response, ApiError> {
    let purpose = declared_purpose(&state, &headers)?;
    let Mapped {
        native,
        mut template,
        stream,
    } = to_native(request, purpose)?;
    let meta = call_meta(&headers, &state, caller, "responses")?;
    template.created_at = now();

    let delivery = if stream {
        Delivery::Stream
    } else {
        Delivery::Complete
    };
    let governed = match governed::call(&state, meta, native, delivery).await? {
        Governed::Complete(answer) => {
            let audit_id = answer.audit_id;
            let stop = StopReason::from_name(&answer.stop_reason).unwrap_or(StopReason::EndTurn);
            let (status, incomplete) = responses::status_for(stop);
            let body = ResponseObject {
                id: response_id(audit_id),
                status,
                completed_at: (status == ResponseStatus::Completed).then(now),
                incomplete_details: incomplete,
                model: answer.model,
                output: output_items(answer.content, audit_id, text_status(status)),
                usage: Some(usage(answer.usage)),
                causeway: Some(CausewayExtension {
                    audit_id: audit_id.to_string(),
                    development_model: answer.development_model,
                    guards: Some(answer.guards),
                }),
                ..template
            };
            return Ok(with_audit_id(Json(body).into_response(), Some(audit_id)));
        }
        Governed::Stream(governed) => governed,
    };

    let audit_id = governed.audit_id;
    let response = ResponseObject {
        id: response_id(audit_id),
        model: governed.model.clone(),
        causeway: Some(CausewayExtension {
            audit_id: audit_id.to_string(),
            development_model: governed.development_model,
            guards: None,
        }),
        ..template
    };
    let mut events = OutputEvents::new(audit_id, response);
    let opening: Vec<Event> = events.opening().iter().map(sse).collect();
    let body = ReceiverStream::new(governed.items).flat_map(move |item| {
        let translated = events.translate(item);
        futures::stream::iter(translated.into_iter().map(|e| Ok::<_, Infallible>(sse(&e))))
    });
    let stream = futures::stream::iter(opening.into_iter().map(Ok::<_, Infallible>)).chain(body);
    let response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    Ok(with_audit_id(response, Some(audit_id)))
}
