"""The OpenAI Responses door with the official OpenAI Python SDK, unchanged but for the endpoint: a response,
a streamed response (raw events and the SDK's stream helper), a function tool and a `function_call_output`
round trip, a streamed function call, and refusals raised as the SDK's own exception classes. Run by
tests/e2e/responses.rs with the test virtualenv's Python; exits non-zero, naming the failed check, when the
hub does not behave as the SDK expects.

Environment: CAUSEWAY_HUB_URL (base URL up to /v1), CAUSEWAY_TOKEN (the user's bearer token),
CAUSEWAY_MODEL (an alias the user may call with purpose `evaluation`), CAUSEWAY_STRUCTURED (set to `1` when
the model answers structured output as asked, as the local development model does).
"""

import json
import os
import sys

import openai
from openai import OpenAI
from pydantic import BaseModel

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string", "minLength": 2}},
        },
    }
]


class City(BaseModel):
    city: str


def check(condition, what):
    if not condition:
        sys.exit(f"openai_responses: {what}")


def expect_error(error_class, call, what):
    """Runs `call`, which must raise `error_class`; returns the exception."""
    try:
        call()
    except error_class as err:
        return err
    except openai.APIStatusError as err:
        check(False, f"{what}: raised {type(err).__name__} ({err.status_code}) instead of {error_class.__name__}")
    check(False, f"{what}: no error was raised")
    return None


def check_sequence(events, what):
    numbers = [event.sequence_number for event in events]
    check(numbers == list(range(len(numbers))), f"{what}: sequence numbers {numbers}")


def main():
    client = OpenAI(
        base_url=os.environ["CAUSEWAY_HUB_URL"],
        api_key=os.environ["CAUSEWAY_TOKEN"],
        default_headers={"x-causeway-purpose": "evaluation"},
        max_retries=0,
    )
    model = os.environ["CAUSEWAY_MODEL"]
    results = {}

    # A response; the audit id comes in a response header.
    raw = client.responses.with_raw_response.create(
        model=model, input="Say hello.", instructions="You are terse.", max_output_tokens=200
    )
    response = raw.parse()
    check(response.object == "response" and response.id.startswith("resp_"), f"response {response.id!r}")
    check(response.status == "completed", f"status {response.status!r}")
    check(response.output_text, "the response has no text")
    check(response.usage.input_tokens > 0 and response.usage.total_tokens > 0, f"usage {response.usage!r}")
    results["audit_id"] = raw.headers.get("x-causeway-audit-id")
    check(results["audit_id"], "no x-causeway-audit-id header")
    check(response.id == "resp_" + results["audit_id"].replace("-", ""), f"id {response.id!r}")
    results["text"] = response.output_text

    # Streamed text, as raw events.
    events = list(client.responses.create(model=model, input="Tell me a story.", stream=True))
    kinds = [event.type for event in events]
    check_sequence(events, "streamed text")
    check(kinds[:2] == ["response.created", "response.in_progress"], f"stream opens with {kinds[:2]}")
    check("response.output_text.delta" in kinds, f"no text deltas in {kinds}")
    check(kinds[-1] == "response.completed", f"stream ends with {kinds[-1]}")
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    completed = events[-1].response
    check(deltas and deltas == completed.output_text, "the deltas do not add up to the completed response")
    check(completed.usage.output_tokens > 0, f"streamed usage {completed.usage!r}")
    results["streamed_text"] = deltas

    # The same through the SDK's stream helper, which checks item identities and order as it accumulates.
    with client.responses.stream(model=model, input="Tell me another story.") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    check(final.status == "completed" and final.output_text, "the stream helper's final response has no text")

    # A function call.
    conversation = [{"role": "user", "content": "What is the weather in Leeds?"}]
    first = client.responses.create(model=model, input=conversation, tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    check(calls, f"no function call in {[item.type for item in first.output]}")
    call = calls[0]
    check(call.name == "get_weather" and call.call_id and call.id, f"function call {call!r}")
    arguments = json.loads(call.arguments)
    check("city" in arguments, f"arguments {arguments!r}")
    results["tool_call"] = {"call_id": call.call_id, "arguments": arguments}

    # Its output goes back with the conversation so far; it carries PII the model must not see.
    conversation += first.output
    conversation.append(
        {
            "type": "function_call_output",
            "call_id": call.call_id,
            "output": json.dumps({"temp_c": 14, "reported_by": "jane.doe@example.com"}),
        }
    )
    answer = client.responses.create(model=model, input=conversation, tools=TOOLS)
    check(answer.status == "completed" and answer.output_text, "the answer after the function output has no text")
    check(not any(item.type == "function_call" for item in answer.output), "the model called the tool again")
    results["tool_result_answer"] = answer.output_text

    # A streamed function call.
    events = list(
        client.responses.create(model=model, input="Weather in York?", tools=TOOLS, tool_choice="required", stream=True)
    )
    check_sequence(events, "streamed function call")
    added = [e.item for e in events if e.type == "response.output_item.added" and e.item.type == "function_call"]
    check(added and added[0].name == "get_weather" and added[0].call_id, "no function call item was added")
    streamed = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    check(done and done[0].arguments == streamed, "the argument deltas do not add up to the arguments")
    check(events[-1].type == "response.completed", f"the function call stream ends with {events[-1].type}")
    results["streamed_arguments"] = json.loads(streamed)

    # Structured output, parsed by the SDK.
    if os.environ.get("CAUSEWAY_STRUCTURED") == "1":
        parsed = client.responses.parse(model=model, input="Which city?", text_format=City)
        check(isinstance(parsed.output_parsed, City), f"parsed {parsed.output_parsed!r}")
        results["structured"] = parsed.output_parsed.model_dump()

    # Refusals, as the SDK's exception classes.
    errors = {}
    err = expect_error(
        openai.BadRequestError,
        lambda: client.responses.create(model=model, input="And tomorrow?", previous_response_id=first.id),
        "previous_response_id",
    )
    check("previous_response_id" in str(err) and "input" in str(err), f"previous_response_id refusal says {err}")
    errors["previous_response_id"] = err.status_code
    err = expect_error(
        openai.BadRequestError,
        lambda: client.responses.create(
            model=model,
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"},
                    ],
                }
            ],
        ),
        "remote image",
    )
    check("data:" in str(err), f"remote image refusal says {err}")
    errors["remote_image"] = err.status_code
    err = expect_error(
        openai.BadRequestError,
        lambda: client.responses.create(model=model, input="Search the web", tools=[{"type": "web_search"}]),
        "web search tool",
    )
    errors["web_search"] = err.status_code
    err = expect_error(
        openai.PermissionDeniedError,
        lambda: client.responses.create(model=model, input="File my claim: SSN 123-45-6789"),
        "a prompt holding an SSN",
    )
    check(err.body["code"] == "guard_blocked", f"guard refusal body {err.body!r}")
    check(err.response.headers.get("x-causeway-audit-id") == err.body["audit_id"], "the refusal's audit id header")
    errors["guard_audit_id"] = err.body["audit_id"]
    err = expect_error(
        openai.NotFoundError,
        lambda: client.responses.create(model="no-such-model", input="hi"),
        "an unknown model",
    )
    errors["not_found"] = err.status_code
    results["errors"] = errors

    print(json.dumps(results))


if __name__ == "__main__":
    main()
