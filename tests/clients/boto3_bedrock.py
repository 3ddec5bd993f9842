"""boto3's bedrock-runtime client against the hub's Bedrock Runtime door, unchanged but for the endpoint.
Run by tests/e2e/bedrock_runtime.rs with the test virtualenv's Python; exits non-zero, naming the failed
check, when the hub does not behave as boto3 expects of Bedrock.

Environment:
- CAUSEWAY_ENDPOINT: the hub's (https, bearer mode) or the agent's (http, sigv4 mode) base URL.
- CAUSEWAY_MODE: `bearer` (boto3's AWS_BEARER_TOKEN_BEDROCK, over TLS, trusting CAUSEWAY_CA) or `sigv4`
  (boto3 signs with the app's own AWS credentials; an event hook puts the user's token in
  `x-causeway-user-token`, as an app does in front of the agent).
- CAUSEWAY_TOKEN: the user's token. CAUSEWAY_DENIED_TOKEN: a user no policy allows. CAUSEWAY_THROTTLED_TOKEN:
  a user whose request budget the script exhausts.
- CAUSEWAY_MODEL: a Bedrock model id the catalog serves. CAUSEWAY_EMBED_MODEL: an embedding model id it
  serves. CAUSEWAY_PURPOSE: the declared purpose.
"""

import base64
import json
import os
import sys

import boto3
from botocore.config import Config

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "inputSchema": {"json": {"type": "object", "required": ["city"],
                                         "properties": {"city": {"type": "string"}}}},
            }
        }
    ]
}


def check(condition, what):
    if not condition:
        sys.exit(f"boto3_bedrock: {what}")


def client(token):
    """A bedrock-runtime client for `token`, as an app would build it: the endpoint changed, and the
    three-line event hook that adds the purpose (and, when signing, the user's token)."""
    mode = os.environ["CAUSEWAY_MODE"]
    session = boto3.session.Session(
        aws_access_key_id="AKIDAPPCREDENTIALS",
        aws_secret_access_key="app-secret-key",
        aws_session_token="app-session-token",
        region_name="us-east-1",
    )
    if mode == "bearer":
        os.environ["AWS_BEARER_TOKEN_BEDROCK"] = token
    else:
        os.environ.pop("AWS_BEARER_TOKEN_BEDROCK", None)
    bedrock = session.client(
        "bedrock-runtime",
        endpoint_url=os.environ["CAUSEWAY_ENDPOINT"],
        verify=os.environ.get("CAUSEWAY_CA") or True,
        config=Config(retries={"total_max_attempts": 1}),
    )

    def add_headers(request, **_):
        request.headers["x-causeway-purpose"] = os.environ["CAUSEWAY_PURPOSE"]
        if mode == "sigv4":
            request.headers["x-causeway-user-token"] = token

    bedrock.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
    return bedrock


def user(text):
    return {"role": "user", "content": [{"text": text}]}


def main():
    model = os.environ["CAUSEWAY_MODEL"]
    bedrock = client(os.environ["CAUSEWAY_TOKEN"])
    results = {}

    # Plain text.
    answer = bedrock.converse(modelId=model, messages=[user("Hello from boto3")],
                              inferenceConfig={"maxTokens": 200})
    check(answer["stopReason"] == "end_turn", f"stopReason {answer['stopReason']!r}")
    check(answer["usage"]["totalTokens"] > 0, "no usage")
    check(answer["ResponseMetadata"]["HTTPHeaders"].get("x-causeway-audit-id"), "no audit id header")
    results["text"] = answer["output"]["message"]["content"][0]["text"]

    # A tool call, and its result going back with PII in it.
    messages = [user("What is the weather in Leeds?")]
    first = bedrock.converse(modelId=model, messages=messages, toolConfig=TOOLS)
    check(first["stopReason"] == "tool_use", f"tool stopReason {first['stopReason']!r}")
    call = next(b["toolUse"] for b in first["output"]["message"]["content"] if "toolUse" in b)
    check(call["name"] == "get_weather", f"tool name {call['name']!r}")
    results["tool_input"] = call["input"]
    messages.append(first["output"]["message"])
    messages.append({"role": "user", "content": [{"toolResult": {
        "toolUseId": call["toolUseId"],
        "content": [{"json": {"temp_c": 14, "reported_by": "jane.doe@example.com"}}],
        "status": "success",
    }}]})
    final = bedrock.converse(modelId=model, messages=messages, toolConfig=TOOLS)
    check(final["stopReason"] == "end_turn", f"final stopReason {final['stopReason']!r}")
    results["tool_result_answer"] = final["output"]["message"]["content"][0]["text"]

    # A streamed tool call: the tool starts a block, its input arrives in fragments.
    stream = bedrock.converse_stream(modelId=model, messages=[user("Weather in York?")], toolConfig=TOOLS)
    names, started, fragments, stop, usage = [], None, "", None, None
    for event in stream["stream"]:
        (name, body), = event.items()
        names.append(name)
        if name == "contentBlockStart":
            started = body["start"]["toolUse"]
        elif name == "contentBlockDelta" and "toolUse" in body["delta"]:
            fragments += body["delta"]["toolUse"]["input"]
        elif name == "messageStop":
            stop = body["stopReason"]
        elif name == "metadata":
            usage = body["usage"]
    check(names[0] == "messageStart" and names[-2:] == ["messageStop", "metadata"], f"event order {names}")
    check(started and started["name"] == "get_weather" and started["toolUseId"], f"block start {started}")
    check(stop == "tool_use", f"streamed stopReason {stop!r}")
    check(usage and usage["outputTokens"] > 0, f"streamed usage {usage}")
    results["streamed_tool_input"] = json.loads(fragments)

    # Streamed text.
    stream = bedrock.converse_stream(modelId=model, messages=[user("Stream me an answer")])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in stream["stream"]
                   if "contentBlockDelta" in e)
    check(text, "the streamed answer has no text")
    results["streamed_text"] = text

    # InvokeModel with Claude's own (Anthropic Messages) body, complete and streamed.
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200,
                       "messages": [{"role": "user", "content": "Hello from invoke_model"}]})
    answer = json.loads(bedrock.invoke_model(modelId=model, body=body)["body"].read())
    check(answer["type"] == "message" and answer["content"][0]["type"] == "text", f"invoke answer {answer}")
    check(answer["stop_reason"] == "end_turn", f"invoke stop_reason {answer['stop_reason']!r}")
    results["invoke_text"] = answer["content"][0]["text"]
    stream = bedrock.invoke_model_with_response_stream(modelId=model, body=body)
    types, text = [], ""
    for event in stream["body"]:
        chunk = json.loads(event["chunk"]["bytes"])
        types.append(chunk["type"])
        if chunk["type"] == "content_block_delta":
            text += chunk["delta"]["text"]
    check(types[0] == "message_start" and types[-1] == "message_stop", f"invoke stream events {types}")
    # The mock echoes the prompt, fenced with a per-call nonce: the words are the same, the fence is not.
    check("Hello from invoke_model" in text, f"the streamed invoke answer {text!r}")

    # InvokeModel with an embedding model's body; the address in the text is masked before the model.
    embedding = json.loads(bedrock.invoke_model(
        modelId=os.environ["CAUSEWAY_EMBED_MODEL"],
        body=json.dumps({"inputText": "Write to jane.doe@example.com", "dimensions": 256}),
    )["body"].read())
    check(len(embedding["embedding"]) == 256, f"embedding length {len(embedding['embedding'])}")
    check(embedding["inputTextTokenCount"] > 0, "no embedding token count")
    results["embedding"] = embedding["embedding"]

    # An image.
    answer = bedrock.converse(modelId=model, messages=[{"role": "user", "content": [
        {"text": "What is in this picture?"},
        {"image": {"format": "png", "source": {"bytes": PNG_1X1}}},
    ]}])
    check(answer["output"]["message"]["content"], "the image answer is empty")

    # The caller's own guardrail is refused: the hub applies its own.
    try:
        bedrock.converse(modelId=model, messages=[user("hi")],
                         guardrailConfig={"guardrailIdentifier": "gr-1", "guardrailVersion": "1"})
        check(False, "a caller's guardrailConfig was accepted")
    except bedrock.exceptions.ValidationException as err:
        check("guardrailConfig" in str(err), f"guardrail refusal says {err}")

    # A model the catalog does not serve.
    try:
        bedrock.converse(modelId="anthropic.claude-v2", messages=[user("hi")])
        check(False, "an unknown model was accepted")
    except bedrock.exceptions.ResourceNotFoundException as err:
        check("not served by this hub" in str(err), f"unknown model says {err}")

    # A user no policy allows.
    denied = client(os.environ["CAUSEWAY_DENIED_TOKEN"])
    try:
        denied.converse(modelId=model, messages=[user("hi")])
        check(False, "a denied user was answered")
    except denied.exceptions.AccessDeniedException as err:
        results["denied"] = err.response["Error"]["Code"]

    # A user over their request budget.
    throttled = client(os.environ["CAUSEWAY_THROTTLED_TOKEN"])
    for attempt in range(50):
        try:
            throttled.converse(modelId=model, messages=[user("again")])
        except throttled.exceptions.ThrottlingException as err:
            results["throttled_after"] = attempt
            results["throttled"] = err.response["Error"]["Code"]
            break
    check("throttled" in results, "50 calls were never throttled")

    print(json.dumps(results))


if __name__ == "__main__":
    main()
