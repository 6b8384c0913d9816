"""Customers: latent personas, their parameters, and the profile attributes they carry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scripts.generate.catalogue import CATEGORIES
from scripts.ground_truth import DATA_SECONDS, SECONDS_PER_DAY, SECONDS_PER_WEEK


@dataclass(frozen=True)
class Persona:
    """Distribution of latent parameters for one kind of customer.

    Rates are per week at season 1; ``(a, b)`` pairs are Beta parameters.
    """

    name: str
    share: float
    rate_per_week: float
    first_order_prob: float
    basket_mean: float
    premium: tuple[float, float]
    discount: tuple[float, float]
    browse_per_week: float
    browse_depth: float
    cart_prob: float
    response: tuple[float, float]
    return_prob: float
    decline_prob: float
    decline_after_weeks: tuple[float, float] = (8.0, 80.0)
    decline_tau_weeks: tuple[float, float] = (4.0, 20.0)
    signup_days: tuple[float, float] = (0.0, 641.0)


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "loyal_high_spender", 0.08, 0.50, 0.9, 3.0, (6, 2), (2, 6), 0.06, 2.5, 0.15, (5, 3),
        0.04, 0.05,
    ),
    Persona(
        "regular", 0.24, 0.21, 0.7, 2.3, (3, 3), (2, 4), 0.03, 2.0, 0.10, (2, 5), 0.06, 0.10,
    ),
    Persona(
        "bargain_hunter", 0.14, 0.20, 0.6, 2.6, (1.5, 5), (6, 2), 0.07, 3.0, 0.20, (4, 3),
        0.09, 0.15,
    ),
    Persona(
        "one_time_buyer", 0.14, 0.004, 1.0, 1.6, (2, 3), (3, 3), 0.01, 1.5, 0.10, (1, 8),
        0.08, 0.0,
    ),
    Persona(
        "window_shopper", 0.12, 0.015, 0.1, 1.5, (3, 3), (3, 3), 0.30, 4.0, 0.35, (3, 4), 0.06,
        0.0,
    ),
    Persona(
        "lapsing_regular", 0.15, 0.30, 0.7, 2.2, (3, 3), (2, 4), 0.03, 2.0, 0.10, (2, 5), 0.06,
        1.0, decline_after_weeks=(8.0, 40.0), decline_tau_weeks=(3.0, 10.0),
        signup_days=(0.0, 440.0),
    ),
    Persona(
        "new_customer", 0.13, 0.30, 0.85, 2.2, (3, 3), (3, 3), 0.06, 2.5, 0.15, (3, 4), 0.06,
        0.0, signup_days=(611.0, 731.0),
    ),
)  # fmt: skip
"""The latent personas; shares sum to 1."""

CANCEL_PROB = 0.06
"""Probability that an order is cancelled (independent of everything, as the oracle assumes);
0 in a ``transactions`` cohort, whose file holds purchases only."""
COHORT_DAYS = 84.0
"""The ``transactions`` shape's acquisition window: every customer signs up and makes a first
purchase in the calendar's first 12 weeks, like CDNOW's customers (all first bought in Q1 1997)."""
RATE_SHAPE = 3.0
"""Gamma shape of a customer's purchase rate around the persona mean (CV = 1/sqrt(3))."""
BROWSE_SHAPE = 2.0
GENDERS = ("female", "male", "non-binary")
GENDER_SHARES = (0.50, 0.47, 0.03)
REGIONS = ("north", "south", "east", "west", "central")
REGION_SHARES = (0.18, 0.22, 0.20, 0.20, 0.20)
CITIES = (
    ("Aldbury", "Northam", "Kestrel Bay"),
    ("Southport", "Marlow", "Brightwater"),
    ("Eastfield", "Harrowgate", "Linden"),
    ("Westmere", "Ashford", "Redcliff"),
    ("Midvale", "Centralia", "Oakham"),
)
CITY_SHARES = (0.5, 0.3, 0.2)
ACQUISITION_CHANNELS = (
    "organic", "paid_search", "social", "referral", "email", "affiliate", "display",
)  # fmt: skip
ACQUISITION_SHARES = (0.30, 0.22, 0.18, 0.10, 0.08, 0.07, 0.05)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
CITY_NAMES = [city for cities in CITIES for city in cities]
CATEGORY_PREFERENCE_ALPHA = 0.6


@dataclass(frozen=True)
class Customers:
    persona: np.ndarray
    created_s: np.ndarray
    rate: np.ndarray
    first_prob: np.ndarray
    cancel_prob: np.ndarray
    basket_mean: np.ndarray
    premium_share: np.ndarray
    discount_affinity: np.ndarray
    browse_rate: np.ndarray
    browse_depth: np.ndarray
    cart_prob: np.ndarray
    response: np.ndarray
    return_prob: np.ndarray
    decline_s: np.ndarray
    decline_tau_days: np.ndarray
    preference: np.ndarray
    preference_grid: np.ndarray
    """Row ``i`` of the cumulative preferences shifted by ``i`` and flattened (increasing)."""

    @property
    def size(self) -> int:
        return len(self.persona)


def _persona_table(attribute: str) -> np.ndarray:
    return np.array([getattr(p, attribute) for p in PERSONAS], dtype=np.float64)


def _beta(rng: np.random.Generator, persona: np.ndarray, attribute: str) -> np.ndarray:
    params = _persona_table(attribute)
    return rng.beta(params[persona, 0], params[persona, 1])


def simulate_customers(
    n: int, rng: np.random.Generator, cohort_days: float | None = None
) -> Customers:
    """Draw ``n`` customers: persona, then every latent parameter from the persona's ranges.

    With ``cohort_days`` every customer signs up in the first ``cohort_days`` of the calendar,
    makes a first order shortly after and never cancels: one acquisition cohort of buyers.
    """
    shares = np.array([p.share for p in PERSONAS])
    persona = rng.choice(len(PERSONAS), n, p=shares / shares.sum())
    signup = _persona_table("signup_days")[persona] * SECONDS_PER_DAY
    if cohort_days is not None:
        signup = np.broadcast_to(np.array([0.0, cohort_days * SECONDS_PER_DAY]), (n, 2))
    created_s = np.floor(signup[:, 0] + rng.random(n) * (signup[:, 1] - signup[:, 0]))
    created_s = np.minimum(created_s, DATA_SECONDS - 1).astype(np.int64)
    rate = _persona_table("rate_per_week")[persona] * rng.gamma(RATE_SHAPE, 1 / RATE_SHAPE, n)
    basket_extra = _persona_table("basket_mean")[persona] - 1.0
    basket_mean = 1.0 + basket_extra * rng.gamma(8.0, 1 / 8.0, n)
    browse_rate = _persona_table("browse_per_week")[persona] * rng.gamma(
        BROWSE_SHAPE, 1 / BROWSE_SHAPE, n
    )
    declines = rng.random(n) < _persona_table("decline_prob")[persona]
    after = _persona_table("decline_after_weeks")[persona]
    tau = _persona_table("decline_tau_weeks")[persona]
    decline_s = created_s + np.floor(rng.uniform(after[:, 0], after[:, 1]) * SECONDS_PER_WEEK)
    decline_s = np.where(declines, decline_s, np.nan)
    decline_tau_days = np.where(declines, rng.uniform(tau[:, 0], tau[:, 1]) * 7.0, np.nan)
    weights = rng.standard_gamma(CATEGORY_PREFERENCE_ALPHA, (n, len(CATEGORIES))) + 1e-3
    preference = weights / weights.sum(axis=1, keepdims=True)
    grid = (np.arange(n)[:, None] + np.cumsum(preference, axis=1)).ravel()
    first_prob = _persona_table("first_order_prob")[persona]
    cancel_prob = np.full(n, CANCEL_PROB)
    if cohort_days is not None:
        first_prob = np.ones(n)
        cancel_prob = np.zeros(n)
    return Customers(
        persona=persona,
        created_s=created_s,
        rate=rate,
        first_prob=first_prob,
        cancel_prob=cancel_prob,
        basket_mean=basket_mean,
        premium_share=_beta(rng, persona, "premium"),
        discount_affinity=_beta(rng, persona, "discount"),
        browse_rate=browse_rate,
        browse_depth=_persona_table("browse_depth")[persona],
        cart_prob=_persona_table("cart_prob")[persona],
        response=_beta(rng, persona, "response"),
        return_prob=_persona_table("return_prob")[persona],
        decline_s=decline_s,
        decline_tau_days=decline_tau_days,
        preference=preference,
        preference_grid=grid,
    )


@dataclass(frozen=True)
class Attributes:
    gender: np.ndarray
    region: np.ndarray
    city: np.ndarray
    birth_days: np.ndarray
    income: np.ndarray
    opt_in: np.ndarray
    acquisition: np.ndarray
    email_domain: np.ndarray


def simulate_attributes(customers: Customers, rng: np.random.Generator) -> Attributes:
    n = customers.size
    gender = rng.choice(len(GENDERS), n, p=GENDER_SHARES)
    region = rng.choice(len(REGIONS), n, p=REGION_SHARES)
    city = region * len(CITY_SHARES) + rng.choice(len(CITY_SHARES), n, p=CITY_SHARES)
    age = np.clip(rng.normal(40.0, 13.0, n), 18.0, 85.0)
    reference = int(np.datetime64("2025-01-01", "D").astype(np.int64))
    birth_days = reference - np.floor(age * 365.25).astype(np.int64)
    log_income = (
        np.log(38_000.0)
        + 0.45 * rng.standard_normal(n)
        + 0.8 * (customers.premium_share - 0.4)
        + 0.01 * (age - 40.0)
    )
    income = np.round(np.exp(log_income), -2)
    opt_in = rng.random(n) < 0.45 + 0.4 * customers.response
    acquisition = rng.choice(len(ACQUISITION_CHANNELS), n, p=ACQUISITION_SHARES)
    email_domain = rng.integers(0, len(EMAIL_DOMAINS), n)
    return Attributes(gender, region, city, birth_days, income, opt_in, acquisition, email_domain)
