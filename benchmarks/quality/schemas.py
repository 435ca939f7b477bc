"""The four document kinds of the evaluation set. Gold values are in canonical form: ISO dates, plain
numbers, names in title case; the documents write them otherwise."""

from __future__ import annotations

from pydantic import BaseModel, Field

_DATE = "the date as YYYY-MM-DD"


class Contact(BaseModel):
    """A contact note: who called, how to reach them."""

    name: str = Field(description="the person's full name")
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    city: str | None = None


class Invoice(BaseModel):
    invoice_number: str
    vendor: str = Field(description="the company that issued the invoice")
    total: float = Field(description="the amount due, a number without currency sign")
    currency: str = Field(description="ISO code, e.g. USD")
    due_date: str | None = Field(default=None, description=_DATE)


class JobPosting(BaseModel):
    title: str
    company: str
    location: str | None = None
    salary_min: int | None = Field(default=None, description="the lowest yearly salary, a number")
    remote: bool = False


class Event(BaseModel):
    name: str
    date: str = Field(description=_DATE)
    venue: str | None = None
    city: str
    price: float | None = Field(default=None, description="ticket price, a number; 0 when free")


SCHEMAS: dict[str, type[BaseModel]] = {
    "contact": Contact,
    "invoice": Invoice,
    "job": JobPosting,
    "event": Event,
}
