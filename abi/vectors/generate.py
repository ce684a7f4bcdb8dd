"""Generate abi/vectors/msgpack.json, the msgpack vectors shared by host and guest SDK tests.

Deterministic: running it again reproduces the committed file byte for byte.
    python abi/vectors/generate.py          # rewrite msgpack.json
    python abi/vectors/generate.py --check  # exit 1 if msgpack.json is stale
The bytes are whatever `msgpack.packb(value, use_bin_type=True)` produces: the smallest
encoding of every int, float64 for every float, str for text, bin for bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgpack

OUTPUT = Path(__file__).with_name("msgpack.json")

# Record ids: 18 opaque chars, the first 3 the object prefix (Contact 003, Task 00T).
CONTACT_1 = "003Qy00000Abc1dIAB"
CONTACT_2 = "003Qy00000Abc1eIAB"
CONTACT_3 = "003Qy00000Abc1fIAB"
TASK_1 = "00TQy00000Xyz9kIAB"


def scalar_vectors() -> list[tuple[str, Any]]:
    """Every msgpack type at each encoding-width boundary."""
    return [
        ("nil", None),
        ("true", True),
        ("false", False),
        # positive fixint 0x00-0x7f, then uint8 cc, uint16 cd, uint32 ce, uint64 cf
        ("int/positive_fixint_zero", 0),
        ("int/positive_fixint_max", 127),
        ("int/uint8_min", 128),
        ("int/uint8_max", 255),
        ("int/uint16_min", 256),
        ("int/uint16_max", 65535),
        ("int/uint32_min", 65536),
        ("int/uint32_max", 4294967295),
        ("int/uint64_min", 4294967296),
        ("int/uint64_max", 18446744073709551615),
        # negative fixint 0xe0-0xff, then int8 d0, int16 d1, int32 d2, int64 d3
        ("int/negative_fixint_max", -1),
        ("int/negative_fixint_min", -32),
        ("int/int8_max", -33),
        ("int/int8_min", -128),
        ("int/int16_max", -129),
        ("int/int16_min", -32768),
        ("int/int32_max", -32769),
        ("int/int32_min", -2147483648),
        ("int/int64_max", -2147483649),
        ("int/int64_min", -9223372036854775808),
        # float64 cb (floats are never narrowed to float32 or to an int)
        ("float/zero", 0.0),
        ("float/negative_zero", -0.0),
        ("float/one", 1.0),
        ("float/half", 0.5),
        ("float/negative", -2.75),
        ("float/pi", 3.141592653589793),
        ("float/large_integral", 1e300),
        ("float/smallest_subnormal", 5e-324),
        # fixstr a0-bf (0-31 bytes), str8 d9 (32-255), str16 da (256-65535); widths count bytes
        ("str/fixstr_empty", ""),
        ("str/fixstr_one", "a"),
        ("str/fixstr_max", "x" * 31),
        ("str/str8_min", "x" * 32),
        ("str/str8_max", "x" * 255),
        ("str/str16_min", "x" * 256),
        ("utf8/two_byte", "café"),
        ("utf8/three_byte", "日本語"),
        ("utf8/four_byte", "🦀"),
        ("utf8/mixed", "Zoë → 東京 🚀"),
        ("utf8/str8_by_bytes", "日" * 11),  # 11 chars but 33 bytes: str8, not fixstr
        # bin8 c4 (0-255 bytes), bin16 c5 (256-65535)
        ("bin/bin8_empty", b""),
        ("bin/bin8_one", b"\x00"),
        ("bin/bin8_max", bytes(range(256))[:255]),
        ("bin/bin16_min", bytes(range(256))),
        # fixarray 90-9f (0-15), array16 dc (16-65535)
        ("array/fixarray_empty", []),
        ("array/fixarray_max", list(range(15))),
        ("array/array16_min", list(range(16))),
        ("array/mixed_scalars", [None, True, False, 1, -1, 1.5, "s", b"\xff"]),
        # fixmap 80-8f (0-15), map16 de (16-65535); key order is preserved
        ("map/fixmap_empty", {}),
        ("map/fixmap_max", {f"k{i:02d}": i for i in range(15)}),
        ("map/map16_min", {f"k{i:02d}": i for i in range(16)}),
        (
            "map/nested_record",
            {
                "Id": CONTACT_1,
                "Name": "Ada Lovelace",
                "Score": 87.5,
                "Tags": ["vip", "engineer"],
                "Address": {"City": "London", "PostalCode": "W1", "Geo": {"lat": 51.5, "lon": -0.12}},
                "Notes": None,
            },
        ),
    ]


def abi_vectors() -> list[tuple[str, Any]]:
    """One vector per ABI message in abi/README.md."""
    contact_1 = {
        "Id": CONTACT_1,
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Title": "CEO",
        "Email": "ada@analytical.example",
        "Company_Size__c": 250,
        "Website_Visits__c": 12,
        "Emails_Opened__c": 4.0,
        "Called_Business__c": True,
        "LeadSource": "Referral",
        "MailingPostalCode": "94105",
    }
    contact_2 = {
        "Id": CONTACT_2,
        "FirstName": None,
        "LastName": "Müller",
        "Title": "",
        "Email": "jm@gmail.com",
        "Company_Size__c": 7.5,
        "Website_Visits__c": -3,
        "Emails_Opened__c": None,
        "Called_Business__c": False,
        "LeadSource": None,
        "MailingPostalCode": "10001",
    }
    census_body = msgpack.packb({"zips": ["94105", "10001"]}, use_bin_type=True)
    census_response = msgpack.packb(
        {"94105": {"median_household_income": 149800}, "10001": {"median_household_income": 96500}},
        use_bin_type=True,
    )
    return [
        (
            "abi/event/after_insert",
            {
                "kind": "trigger",
                "object": "Contact",
                "operation": "after_insert",
                "new": [contact_1, contact_2],
                "old": None,
            },
        ),
        (
            "abi/event/before_update",
            {
                "kind": "trigger",
                "object": "Contact",
                "operation": "before_update",
                "new": [{"Id": CONTACT_3, "Title": "VP Sales", "Company_Size__c": 60}],
                "old": [{"Id": CONTACT_3, "Title": "Manager", "Company_Size__c": 45}],
            },
        ),
        (
            "abi/query/binds",
            {"name": "census_url", "ids": [CONTACT_1, CONTACT_2], "min_size": 50, "active": True},
        ),
        (
            "abi/query/response",
            {
                "records": [
                    {"Id": "a00Qy00000Set01IAB", "Value__c": "https://census.example/v1/income"},
                ],
                "total_size": 1,
            },
        ),
        ("abi/query/response_count", {"records": [], "total_size": 4213}),
        (
            "abi/dml/rows_array",
            [
                {
                    "Id": CONTACT_1,
                    "VLPR_Score__c": 98,
                    "VLPR_Grade__c": "A",
                    "Next_Action__c": "Call within 1 hour",
                },
                {"Id": CONTACT_2, "VLPR_Score__c": 9, "VLPR_Grade__c": "D", "Next_Action__c": "Monitor"},
            ],
        ),
        (
            "abi/dml/upsert_rows_map",
            {
                "rows": [
                    {"Email": "ada@analytical.example", "LastName": "Lovelace"},
                    {"Email": "grace@navy.example", "LastName": "Hopper"},
                ],
                "external_id": "Email",
            },
        ),
        ("abi/dml/response", {"ids": [CONTACT_1, "003Qy00000Abc1gIAB"], "created": [False, True]}),
        (
            "abi/http/callout_request",
            {
                "method": "POST",
                "url": "https://census.example/v1/income",
                "headers": {"content-type": "application/msgpack"},
                "body": census_body,
                "timeout_ms": 5000,
            },
        ),
        (
            "abi/http/callout_response",
            {"status": 200, "headers": {"content-type": "application/msgpack"}, "body": census_response},
        ),
        (
            "abi/limits/usage",
            {
                "fuel": [93211, 5000000000],
                "timeout_ms": [3, 10000],
                "memory_bytes": [131072, 134217728],
                "queries": [1, 100],
                "query_rows": [1, 50000],
                "dml_statements": [2, 150],
                "dml_rows": [3, 10000],
                "callouts": [1, 100],
                "callout_time_ms": [41, 120000],
                "log_bytes": [28, 1048576],
                "input_bytes": [618, 4194304],
                "output_bytes": [0, 4194304],
            },
        ),
        (
            "abi/handle/before_trigger_output",
            {"new": [{"Id": CONTACT_3, "Title": "VP Sales", "Company_Size__c": 60, "VLPR_Grade__c": "B"}]},
        ),
        ("abi/handle/before_trigger_no_changes", None),
        ("abi/handle/ok_output", {"scored": 2, "grade_a": 1}),
        (
            "abi/dml/insert_task",
            [
                {
                    "Subject": "CRITICAL: call Ada Lovelace (VLPR 98)",
                    "Priority": "High",
                    "Status": "Not Started",
                    "WhoId": CONTACT_1,
                    "Description": "Virtual LPR grade A, score 98",
                }
            ],
        ),
    ]


def to_json(value: Any) -> Any:
    """The JSON form: bin as {"$bin": hex}, integral floats as {"$float": x}, the rest as is."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, float):
        return {"$float": value} if value.is_integer() else value
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(value: Any) -> Any:
    """Inverse of `to_json`."""
    if isinstance(value, dict):
        if value.keys() == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        if value.keys() == {"$float"}:
            return float(value["$float"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def build() -> list[dict[str, Any]]:
    return [
        {"name": name, "hex": msgpack.packb(value, use_bin_type=True).hex(), "value": to_json(value)}
        for name, value in scalar_vectors() + abi_vectors()
    ]


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
        if current != text:
            print(f"{OUTPUT} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8", newline="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
