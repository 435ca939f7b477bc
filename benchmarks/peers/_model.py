"""The one realistic model every system extracts, and the documents it reads.

Nested model, a list, an enum and optional fields: the shape of a real invoice, small enough that the
client's own work (not the server) dominates on loopback.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

MODEL_NAME = "gpt-oss-120b"
"""Cerebras' default model; pydantic-ai allows native output on Cerebras only for some names (not llama)."""

API_KEY = "bench-not-a-real-key"
SYSTEM = "Extract the invoice described by the user's text."


class Priority(str, Enum):
    low = "low"
    normal = "normal"
    urgent = "urgent"


class Address(BaseModel):
    street: str
    city: str
    postcode: str | None = None
    country: str


class LineItem(BaseModel):
    description: str
    quantity: int
    unit_price: float


class Invoice(BaseModel):
    """An invoice as written in a letter or an e-mail."""

    number: str = Field(description="Invoice number as printed")
    customer: str
    billing_address: Address
    items: list[LineItem]
    priority: Priority
    due_date: str | None = Field(default=None, description="ISO date, if stated")
    notes: str | None = None


_LETTER = (
    "Dear accounts team, thank you for your continued business over the past year. As agreed in our "
    "framework contract, deliveries were made to the Leith depot and signed for by the site manager. "
    "Please quote the invoice number on every remittance and send remittance advice to the address "
    "above. Goods remain our property until paid in full; late payments may incur statutory interest. "
    "If anything on this invoice looks wrong, reply within fourteen days and we will correct it. "
)


def document(i: int, *, long: bool = False) -> str:
    """Document number `i`: distinct texts, so no layer can cache a reply by prompt.

    `long` wraps the same facts in a letter of about 700 tokens, the size of a real e-mail or page.
    """
    if long:
        return f"Ref {i}. " + _LETTER * 4 + document(i) + " " + _LETTER * 3
    return (
        f"Invoice INV-{1000 + i} for Acme Widgets Ltd, 12 Harbour Street, Leith, EH6 6LU, United Kingdom. "
        f"{i % 7 + 1} x steel bracket at 4.20 each, {i % 3 + 1} x hinge set at 11.00 each. "
        f"Payment due 2026-12-{i % 28 + 1:02d}. Please treat as {'urgent' if i % 5 == 0 else 'normal'}."
    )


# ---- The same invoice without `title` keywords --------------------------------------------------------
# pydantic writes `title` on every model, field and enum; the OpenAI SDK's strict transform keeps them,
# and a Cerebras-like strict mode refuses `title`. These twins exist only so the OpenAI SDK's own
# `parse()` can be measured at all; their values and validation are identical.


def _drop_titles(schema: dict[str, Any]) -> None:
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)


class _Untitled(BaseModel):
    model_config = ConfigDict(json_schema_extra=_drop_titles)


class PriorityNT(str, Enum):
    low = "low"
    normal = "normal"
    urgent = "urgent"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema.pop("title", None)
        return schema


class AddressNT(_Untitled):
    street: str
    city: str
    postcode: str | None = None
    country: str


class LineItemNT(_Untitled):
    description: str
    quantity: int
    unit_price: float


class InvoiceNT(_Untitled):
    """An invoice as written in a letter or an e-mail."""

    number: str = Field(description="Invoice number as printed")
    customer: str
    billing_address: AddressNT
    items: list[LineItemNT]
    priority: PriorityNT
    due_date: str | None = Field(default=None, description="ISO date, if stated")
    notes: str | None = None
