"""Seeded generator of the labelled evaluation set: gold records from Faker, rendered into documents of
four kinds (contact notes, invoices, job postings, event announcements).

The documents phrase values differently from the gold form (dates written out, amounts with currency
signs and thousands separators, names upper- or lower-cased), leave some fields out (gold null), and put
distractors nearby (a second person, an earlier date, a previous balance), so a correct extraction has to
read the document, not pattern-match it.

    python -m benchmarks.quality.dataset --n 40 --seed 7 -o tests/data/quality_eval.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from faker import Faker

__all__ = ["KINDS", "generate", "main"]

Doc = tuple[str, dict[str, Any]]  # (text, gold)
_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£"}
_TODAY = dt.date(2025, 6, 1)  # fixed, so a seed gives the same set on any day


def _day(fake: Faker, start: int, end: int) -> dt.date:
    """A date between _TODAY + start days and _TODAY + end days."""
    day: dt.date = fake.date_between_dates(_TODAY + dt.timedelta(days=start), _TODAY + dt.timedelta(days=end))
    return day


def _date_text(rng: random.Random, day: dt.date) -> str:
    forms = (
        f"{day:%B} {day.day}, {day.year}",
        f"{day.day} {day:%B} {day.year}",
        f"the {day.day}{_suffix(day.day)} of {day:%B} {day.year}",
        f"{day:%a}, {day:%b} {day.day} {day.year}",
    )
    return rng.choice(forms)


def _suffix(n: int) -> str:
    return "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _money(rng: random.Random, amount: float, currency: str) -> str:
    forms = (
        f"{_SIGNS[currency]}{amount:,.2f}",
        f"{currency} {amount:,.2f}",
        f"{amount:,.2f} {currency}",
    )
    return rng.choice(forms)


def _cased(rng: random.Random, name: str) -> str:
    return rng.choice((name, name.upper(), name.lower(), name))


def _maybe(rng: random.Random, value: Any, keep: float = 0.75) -> Any:
    return value if rng.random() < keep else None


def _contact(fake: Faker, rng: random.Random) -> Doc:
    name = f"{fake.first_name()} {fake.last_name()}"
    other = f"{fake.first_name()} {fake.last_name()}"
    gold: dict[str, Any] = {
        "name": name,
        "email": _maybe(rng, fake.email()),
        "phone": _maybe(rng, fake.numerify("+1-###-###-####")),
        "company": _maybe(rng, fake.company()),
        "city": _maybe(rng, fake.city()),
    }
    lines = [f"Call notes, {_date_text(rng, _day(fake, -730, 0))} (taken by {other})."]
    who = _cased(rng, name)
    lines.append(f"Spoke with {who}" + (f" of {gold['company']}" if gold["company"] else "") + ".")
    if gold["city"]:
        lines.append(f"They are based in {gold['city']}; our office is in {fake.city()}.")
    if gold["email"]:
        lines.append(f"Reach them at {gold['email']} (not {fake.email()}, that one bounced).")
    if gold["phone"]:
        lines.append(f"Phone: {gold['phone']}.")
    lines.append(fake.sentence(nb_words=10))
    return " ".join(lines), gold


def _invoice(fake: Faker, rng: random.Random) -> Doc:
    currency = rng.choice(tuple(_SIGNS))
    total = round(rng.uniform(20, 20000), 2)
    issued = _day(fake, -365, 0)
    due = issued + dt.timedelta(days=rng.choice((14, 30, 45)))
    gold: dict[str, Any] = {
        "invoice_number": f"INV-{rng.randint(1000, 99999)}",
        "vendor": fake.company(),
        "total": total,
        "currency": currency,
        "due_date": _maybe(rng, due.isoformat()),
    }
    previous = round(rng.uniform(20, 5000), 2)
    text = (
        f"{gold['vendor'].upper()}\n{fake.street_address()}, {fake.city()}\n\n"
        f"Invoice {gold['invoice_number']}, issued {_date_text(rng, issued)}\n"
        f"Bill to: {fake.company()}\n"
        f"Previous balance (settled): {_money(rng, previous, currency)}\n"
        f"Amount due: {_money(rng, total, currency)}\n"
    )
    if gold["due_date"]:
        text += f"Payment due by {_date_text(rng, due)}.\n"
    return text + "Thank you for your business.", gold


def _job(fake: Faker, rng: random.Random) -> Doc:
    salary = rng.randrange(40_000, 200_000, 1000)
    remote = rng.random() < 0.4
    gold: dict[str, Any] = {
        "title": fake.job(),
        "company": fake.company(),
        "location": None if remote and rng.random() < 0.5 else fake.city(),
        "salary_min": _maybe(rng, salary, 0.6),
        "remote": remote,
    }
    text = f"{_cased(rng, gold['company'])} is hiring: {gold['title']}.\n"
    if gold["location"]:
        text += f"Location: {gold['location']}" + (" (or fully remote)" if remote else " (on site)") + ".\n"
    elif remote:
        text += "This role is fully remote.\n"
    if gold["salary_min"] is not None:
        top = salary + rng.randrange(10_000, 60_000, 1000)
        text += f"Pay: ${salary:,} to ${top:,} a year, plus a $2,000 signing bonus.\n"
    text += f"Apply by {_date_text(rng, _day(fake, 1, 60))}. {fake.sentence(nb_words=12)}"
    return text, gold


def _event(fake: Faker, rng: random.Random) -> Doc:
    day = _day(fake, 1, 365)
    price = rng.choice((0.0, round(rng.uniform(5, 150), 2)))
    gold: dict[str, Any] = {
        "name": f"{fake.word().title()} {rng.choice(('Festival', 'Summit', 'Meetup', 'Concert', 'Fair'))}",
        "date": day.isoformat(),
        "venue": _maybe(rng, f"{fake.last_name()} Hall"),
        "city": fake.city(),
        "price": _maybe(rng, price, 0.7),
    }
    text = f"Announcing the {gold['name']}! Join us on {_date_text(rng, day)}"
    text += f" at {gold['venue']}, {gold['city']}." if gold["venue"] else f" in {gold['city']}."
    last = day - dt.timedelta(days=365)
    text += f" Last year's edition ({_date_text(rng, last)}) sold out."
    if gold["price"] is not None:
        text += " Entry is free." if price == 0 else f" Tickets: {_money(rng, price, 'USD')} (VIP $250.00)."
    return text + f" {fake.sentence(nb_words=8)}", gold


KINDS: dict[str, Callable[[Faker, random.Random], Doc]] = {
    "contact": _contact,
    "invoice": _invoice,
    "job": _job,
    "event": _event,
}


def generate(n: int, seed: int = 7, kinds: tuple[str, ...] = tuple(KINDS)) -> Iterator[dict[str, Any]]:
    """n documents, kinds in turn: {"id", "kind", "text", "gold"}; the same seed gives the same set."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        text, gold = KINDS[kind](fake, rng)
        yield {"id": f"{kind}-{i:03d}", "kind": kind, "text": text, "gold": gold}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-o", "--out", help="JSONL file (default stdout)")
    args = parser.parse_args(argv)
    lines = "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in generate(args.n, args.seed))
    if args.out:
        Path(args.out).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
