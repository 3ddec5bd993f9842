"""Tools, images and documents through the hub with the official OpenAI Python SDK, unchanged but for the
endpoint. Run by tests/e2e/client_sdks.rs with the test virtualenv's Python; exits non-zero, naming the
failed check, when the hub does not behave as the SDK expects.

Environment: CAUSEWAY_HUB_URL (base URL up to /v1), CAUSEWAY_TOKEN (the user's bearer token),
CAUSEWAY_MODEL (an alias the user may call), CAUSEWAY_PURPOSE (the declared purpose; default `evaluation`),
CAUSEWAY_SSN_PDF (a PDF whose text holds a US SSN).
"""

import base64
import json
import os
import sys

import openai
from openai import OpenAI

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string", "minLength": 2}},
            },
        },
    }
]


def check(condition, what):
    if not condition:
        sys.exit(f"openai_content: {what}")


def main():
    client = OpenAI(
        base_url=os.environ["CAUSEWAY_HUB_URL"],
        api_key=os.environ["CAUSEWAY_TOKEN"],
        default_headers={"x-causeway-purpose": os.environ.get("CAUSEWAY_PURPOSE", "evaluation")},
        max_retries=0,
    )
    model = os.environ["CAUSEWAY_MODEL"]
    results = {}

    # A tool call.
    messages = [{"role": "user", "content": "What is the weather in Leeds?"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    choice = first.choices[0]
    check(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason!r}")
    call = choice.message.tool_calls[0]
    check(call.function.name == "get_weather", f"tool name {call.function.name!r}")
    arguments = json.loads(call.function.arguments)
    check("city" in arguments, f"arguments {arguments!r}")
    results["tool_call"] = {"id": call.id, "arguments": arguments}

    # The tool result goes back; it carries PII the model must not see.
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append(
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": json.dumps({"temp_c": 14, "reported_by": "jane.doe@example.com"}),
        }
    )
    final = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    check(final.choices[0].finish_reason == "stop", f"final finish_reason {final.choices[0].finish_reason!r}")
    check(final.choices[0].message.content, "the final answer has no text")
    results["tool_result_answer"] = final.choices[0].message.content

    # A streamed tool call: index, id and name first, then argument fragments.
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Weather in York?"}],
        tools=TOOLS,
        stream=True,
    )
    first_fragment, arguments_text, finish = None, "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for fragment in delta.tool_calls or []:
            if first_fragment is None:
                first_fragment = fragment
            arguments_text += fragment.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    check(first_fragment is not None and first_fragment.id and first_fragment.function.name == "get_weather",
          "the first tool-call fragment lacks its id or name")
    check(first_fragment.index == 0, f"first fragment index {first_fragment.index}")
    check("city" in json.loads(arguments_text), f"streamed arguments {arguments_text!r}")
    check(finish == "tool_calls", f"streamed finish_reason {finish!r}")
    results["streamed_arguments"] = json.loads(arguments_text)

    # An image, as a data URI.
    image = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()}},
        ]}],
    )
    check(image.choices[0].message.content, "the image answer has no text")
    results["image_answer"] = image.choices[0].message.content

    # A remote image URL is refused: the hub fetches nothing for a caller.
    try:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]}],
        )
        check(False, "a remote image URL was accepted")
    except openai.BadRequestError as err:
        check("data:" in str(err), f"remote image refusal says {err}")

    # A PDF whose text holds an SSN: the default profile blocks it.
    pdf = open(os.environ["CAUSEWAY_SSN_PDF"], "rb").read()
    try:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": [
                {"type": "text", "text": "Summarise this file."},
                {"type": "file", "file": {"filename": "patient.pdf",
                                          "file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()}},
            ]}],
        )
        check(False, "a PDF holding an SSN was accepted")
    except openai.PermissionDeniedError as err:
        check("US_SSN" in str(err), f"PDF refusal says {err}")
        results["pdf_refusal"] = err.status_code

    # A corrupt PDF is refused with a clear error.
    try:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": [
                {"type": "text", "text": "Summarise this file."},
                {"type": "file", "file": {"filename": "broken.pdf",
                                          "file_data": "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 broken").decode()}},
            ]}],
        )
        check(False, "a corrupt PDF was accepted")
    except openai.PermissionDeniedError as err:
        check("could not be scanned" in str(err), f"corrupt PDF refusal says {err}")

    print(json.dumps(results))


if __name__ == "__main__":
    main()
