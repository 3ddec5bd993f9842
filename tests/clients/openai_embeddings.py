"""Embeddings through the hub with the official OpenAI Python SDK, unchanged but for the endpoint. Run by
tests/e2e/embeddings.rs with the test virtualenv's Python; prints what the hub returned as JSON, and exits
non-zero, naming the failed check, when the hub does not behave as the SDK expects.

Environment: CAUSEWAY_HUB_URL (base URL up to /v1), CAUSEWAY_TOKEN, CAUSEWAY_PURPOSE (default `evaluation`),
CAUSEWAY_MODEL (an embedding alias),
CAUSEWAY_CHAT_MODEL (a chat alias, which embeddings must refuse), CAUSEWAY_DIMENSIONS (a shorter length the
model supports).
"""

import base64
import json
import os
import struct
import sys

import openai
from openai import OpenAI

TEXTS = [
    "Refund the duplicated direct debit for the business account.",
    "Contact the customer at jane.doe@example.com about the refund.",
]


def check(condition, what):
    if not condition:
        sys.exit(f"openai_embeddings: {what}")


def main():
    client = OpenAI(
        base_url=os.environ["CAUSEWAY_HUB_URL"],
        api_key=os.environ["CAUSEWAY_TOKEN"],
        default_headers={"x-causeway-purpose": os.environ.get("CAUSEWAY_PURPOSE", "evaluation")},
        max_retries=0,
    )
    model = os.environ["CAUSEWAY_MODEL"]
    results = {}

    # A list of texts, as floats. (The SDK asks for base64 by default and decodes it itself.)
    batch = client.embeddings.create(model=model, input=TEXTS)
    check(len(batch.data) == 2 and [d.index for d in batch.data] == [0, 1], "one vector per text, in order")
    check(batch.usage.prompt_tokens > 0, "no usage")
    results["vectors"] = [d.embedding for d in batch.data]
    results["model"] = batch.model

    # One text, floats asked for explicitly, and a shorter vector.
    dimensions = int(os.environ["CAUSEWAY_DIMENSIONS"])
    single = client.embeddings.create(model=model, input=TEXTS[0], encoding_format="float",
                                      dimensions=dimensions)
    check(len(single.data[0].embedding) == dimensions, f"length {len(single.data[0].embedding)}")
    results["short_vector"] = single.data[0].embedding

    # The raw base64 form decodes to the same floats.
    raw = client.embeddings.with_raw_response.create(model=model, input=TEXTS[0], encoding_format="base64")
    check(raw.headers.get("x-causeway-audit-id"), "no audit id header")
    encoded = json.loads(raw.text)["data"][0]["embedding"]
    data = base64.b64decode(encoded)
    floats = list(struct.unpack(f"<{len(data) // 4}f", data))
    check(floats == results["vectors"][0], "base64 and float vectors differ")

    # A chat model is not an embedding model.
    try:
        client.embeddings.create(model=os.environ["CAUSEWAY_CHAT_MODEL"], input="hello")
        check(False, "a chat model embedded text")
    except openai.BadRequestError as err:
        check("chat model" in str(err), f"chat model refusal says {err}")

    # Token arrays are refused: the hub guards text.
    try:
        client.embeddings.create(model=model, input=[[101, 2023, 102]])
        check(False, "token arrays were accepted")
    except openai.BadRequestError as err:
        check("token arrays" in str(err), f"token array refusal says {err}")

    print(json.dumps(results))


if __name__ == "__main__":
    main()
