"""The four document kinds of the evaluation set. Gold values are in canonical form: ISO dates, plain
numbers, names in title case; the documents write them otherwise. No field descriptions: a small model
copies a description into the value instead of reading the document."""

from __future__ import annotations

from pydantic import BaseModel


class Contact(BaseModel):
    name: str
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    city: str | None = None


class Invoice(BaseModel):
    invoice_number: str
    vendor: str
    total: float
    currency: str
    due_date: str | None = None


class JobPosting(BaseModel):
    title: str
    company: str
    location: str | None = None
    salary_min: int | None = None
    remote: bool = False


class Event(BaseModel):
    name: str
    date: str
    venue: str | None = None
    city: str
    price: float | None = None


SCHEMAS: dict[str, type[BaseModel]] = {
    "contact": Contact,
    "invoice": Invoice,
    "job": JobPosting,
    "event": Event,
}
