"""The Anthropic Messages door with the official Anthropic Python SDK, unchanged but for the endpoint: a
message, a streamed tool call, a tool round trip, an image, stop sequences, token counting, and errors raised
as the SDK's own exception classes. Run by tests/e2e/anthropic.rs with the test virtualenv's Python; exits
non-zero, naming the failed check, when the hub does not behave as the SDK expects.

Environment: CAUSEWAY_HUB_URL (the hub's base URL, without /v1), CAUSEWAY_TOKEN (the user's token, sent by
the SDK as `x-api-key`), CAUSEWAY_MODEL (an alias the user may call with purpose `evaluation`).
"""

import base64
import json
import os
import sys

import anthropic
from anthropic import Anthropic

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string", "minLength": 2}},
        },
    }
]


def check(condition, what):
    if not condition:
        sys.exit(f"anthropic_messages: {what}")


def expect_error(error_class, call, what):
    """Runs `call`, which must raise `error_class`; returns the exception."""
    try:
        call()
    except error_class as err:
        check(err.body["type"] == "error", f"{what}: body {err.body!r}")
        return err
    except anthropic.APIStatusError as err:
        check(False, f"{what}: raised {type(err).__name__} ({err.status_code}) instead of {error_class.__name__}")
    check(False, f"{what}: no error was raised")
    return None


def main():
    base_url = os.environ["CAUSEWAY_HUB_URL"]
    token = os.environ["CAUSEWAY_TOKEN"]
    model = os.environ["CAUSEWAY_MODEL"]
    purpose = {"x-causeway-purpose": "evaluation"}
    client = Anthropic(base_url=base_url, api_key=token, default_headers=purpose, max_retries=0)
    results = {}

    # A message; the audit id comes in a response header.
    raw = client.messages.with_raw_response.create(
        model=model,
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hello."}],
    )
    message = raw.parse()
    check(message.type == "message" and message.role == "assistant", f"message {message!r}")
    check(message.id.startswith("msg_"), f"id {message.id!r}")
    check(message.stop_reason == "end_turn", f"stop_reason {message.stop_reason!r}")
    check(message.content[0].type == "text" and message.content[0].text, "the answer has no text")
    check(message.usage.input_tokens > 0, f"usage {message.usage!r}")
    results["audit_id"] = raw.headers.get("x-causeway-audit-id")
    check(results["audit_id"], "no x-causeway-audit-id header")
    results["text"] = message.content[0].text

    # A tool call.
    messages = [{"role": "user", "content": "What is the weather in Leeds?"}]
    first = client.messages.create(model=model, max_tokens=200, messages=messages, tools=TOOLS)
    check(first.stop_reason == "tool_use", f"stop_reason {first.stop_reason!r}")
    call = next(block for block in first.content if block.type == "tool_use")
    check(call.name == "get_weather", f"tool name {call.name!r}")
    results["tool_call"] = {"id": call.id, "input": call.input}

    # The result goes back; it carries PII the model must not see.
    messages.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": json.dumps({"temp_c": 14, "reported_by": "jane.doe@example.com"}),
                }
            ],
        }
    )
    final = client.messages.create(model=model, max_tokens=200, messages=messages, tools=TOOLS)
    check(final.stop_reason == "end_turn", f"final stop_reason {final.stop_reason!r}")
    check(final.content and final.content[0].type == "text", "the final answer has no text")
    results["tool_result_answer"] = final.content[0].text

    # A streamed tool call, through the SDK's stream helper (it checks the event order as it accumulates).
    kinds = []
    with client.messages.stream(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "Weather in York?"}],
        tools=TOOLS,
    ) as stream:
        for event in stream:
            kinds.append(event.type)
        streamed = stream.get_final_message()
    check(kinds[0] == "message_start" and kinds[-1] == "message_stop", f"event order {kinds}")
    check("content_block_start" in kinds and "content_block_stop" in kinds, f"no blocks in {kinds}")
    check(streamed.stop_reason == "tool_use", f"streamed stop_reason {streamed.stop_reason!r}")
    streamed_call = next(block for block in streamed.content if block.type == "tool_use")
    check(streamed_call.name == "get_weather" and streamed_call.id, "the streamed tool call lacks its id or name")
    results["streamed_input"] = streamed_call.input

    # Streamed text.
    with client.messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "Tell me a story."}]
    ) as stream:
        text = "".join(stream.text_stream)
        story = stream.get_final_message()
    check(text and text == story.content[0].text, "streamed text does not add up to the final message")
    check(story.stop_reason == "end_turn", f"streamed text stop_reason {story.stop_reason!r}")
    results["streamed_text"] = text

    # An image, as base64 bytes.
    image = client.messages.create(
        model=model,
        max_tokens=200,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG_1X1).decode()},
                    },
                ],
            }
        ],
    )
    check(image.content[0].text, "the image answer has no text")
    results["image_answer"] = image.content[0].text

    # A stop sequence.
    stopped = client.messages.create(
        model=model,
        max_tokens=200,
        stop_sequences=["locally"],
        messages=[{"role": "user", "content": "Say hello."}],
    )
    results["stop"] = {"reason": stopped.stop_reason, "sequence": stopped.stop_sequence}

    # Token counting.
    counted = client.messages.count_tokens(
        model=model,
        system="You are terse.",
        messages=[{"role": "user", "content": "What is the weather in Leeds?"}],
        tools=TOOLS,
    )
    check(counted.input_tokens > 0, f"count_tokens {counted!r}")
    results["input_tokens"] = counted.input_tokens

    # Errors arrive as the SDK's exception classes.
    errors = {}
    stranger = Anthropic(base_url=base_url, api_key="not-a-token", default_headers=purpose, max_retries=0)
    err = expect_error(
        anthropic.AuthenticationError,
        lambda: stranger.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}]),
        "a bad token",
    )
    errors["authentication"] = err.type
    err = expect_error(
        anthropic.PermissionDeniedError,
        lambda: client.messages.create(
            model=model,
            max_tokens=10,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "File my claim."},
                        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "SSN 123-45-6789"}},
                    ],
                }
            ],
        ),
        "a document holding an SSN",
    )
    check("US_SSN" in str(err), f"SSN refusal says {err}")
    errors["guard"] = err.type
    errors["guard_audit_id"] = err.body["error"].get("audit_id")
    err = expect_error(
        anthropic.NotFoundError,
        lambda: client.messages.create(model="claude-9", max_tokens=10, messages=[{"role": "user", "content": "hi"}]),
        "an unknown model",
    )
    errors["not_found"] = err.type
    err = expect_error(
        anthropic.BadRequestError,
        lambda: client.messages.create(
            model=model,
            max_tokens=10,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}],
                }
            ],
        ),
        "a remote image URL",
    )
    check("base64" in str(err), f"remote image refusal says {err}")
    errors["bad_request"] = err.type
    results["errors"] = errors

    print(json.dumps(results))


if __name__ == "__main__":
    main()
