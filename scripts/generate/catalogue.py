"""The product catalogue: categories, prices, brands and popularity (depends on the seed only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from scripts import dirt
from scripts.generate.arrow import dictionary_array, format_ids

CATEGORIES = (
    "electronics", "fashion", "home", "beauty", "sports",
    "toys", "grocery", "books", "garden", "pets",
)  # fmt: skip
PRODUCTS_PER_CATEGORY = (300, 600, 400, 300, 250, 250, 350, 300, 150, 100)
MEDIAN_PRICE = (120.0, 40.0, 50.0, 20.0, 45.0, 25.0, 6.0, 15.0, 35.0, 18.0)
EXTRA_QUANTITY = (0.05, 0.1, 0.15, 0.3, 0.1, 0.15, 1.2, 0.1, 0.2, 0.6)
"""Mean of ``quantity - 1`` per category."""
COMPLEMENTS = (
    ("electronics", "sports"),
    ("fashion", "beauty"),
    ("home", "garden"),
    ("toys", "books"),
    ("grocery", "pets"),
)
"""Complementary category pairs: a basket's first item pulls its complement into the basket."""
COMPLEMENT_PROB = 0.35
"""Probability that a further item of a basket is from the first item's complement category."""
COMPLEMENT_OF = np.array(
    [
        CATEGORIES.index(right if category == left else left)
        for category in CATEGORIES
        for left, right in COMPLEMENTS
        if category in (left, right)
    ]
)
"""Category index -> its complement's index."""
POPULARITY_BINS = 4096
"""Resolution of product popularity within a (category, tier) group."""
BRANDS_PER_CATEGORY = 6
BRAND_STEMS = (
    "Acme", "Nova", "Vireo", "Lumen", "Kestrel", "Orbit", "Tundra", "Quill", "Maple", "Zephyr",
    "Cobalt", "Juniper", "Atlas", "Ember", "Harbor", "Pico", "Sable", "Willow", "Onyx", "Fable",
)  # fmt: skip

PRODUCT_ID_WIDTH = 5

_PRODUCTS_KEY = 2**31 - 1
PRODUCT_IDS = format_ids("P", np.arange(1, sum(PRODUCTS_PER_CATEGORY) + 1), PRODUCT_ID_WIDTH)


def product_ids(product: np.ndarray) -> pa.DictionaryArray:
    """Product ids as a dictionary over the catalogue; negative indices become null."""
    indices = pa.array(product.astype(np.int32), mask=product < 0)
    return pa.DictionaryArray.from_arrays(indices, PRODUCT_IDS)


@dataclass(frozen=True)
class Catalogue:
    category: np.ndarray
    premium: np.ndarray
    list_price: np.ndarray
    brand: np.ndarray
    lookup: np.ndarray
    """Row ``g``: ``POPULARITY_BINS`` products of group ``g`` (category * 2 + premium tier),
    each repeated in proportion to its popularity, so a draw is one gather."""

    @property
    def size(self) -> int:
        return len(self.category)

    def sample(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one product per row from its (category, tier) group by popularity."""
        return self.lookup.ravel()[
            group * POPULARITY_BINS + rng.integers(0, POPULARITY_BINS, len(group))
        ]


def build_catalogue(seed: int) -> Catalogue:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PRODUCTS_KEY,)))
    category = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    raw_price = np.exp(
        np.log(np.array(MEDIAN_PRICE))[category] + 0.6 * rng.standard_normal(len(category))
    )
    list_price = np.maximum(np.round(raw_price), 1.0) - 0.01
    medians = np.array([np.median(list_price[category == c]) for c in range(len(CATEGORIES))])
    premium = (list_price > medians[category]).astype(np.int64)
    brand = category * BRANDS_PER_CATEGORY + rng.integers(0, BRANDS_PER_CATEGORY, len(category))
    popularity = rng.lognormal(0.0, 1.0, len(category))
    group = category * 2 + premium
    midpoints = (np.arange(POPULARITY_BINS) + 0.5) / POPULARITY_BINS
    lookup = np.empty((2 * len(CATEGORIES), POPULARITY_BINS), dtype=np.int64)
    for g in range(2 * len(CATEGORIES)):
        members = np.flatnonzero(group == g)
        cumulative = np.cumsum(popularity[members])
        position = np.searchsorted(cumulative / cumulative[-1], midpoints, side="right")
        lookup[g] = members[np.minimum(position, len(members) - 1)]
    return Catalogue(category, premium, list_price, brand, lookup)


def brand_names() -> list[str]:
    suffixes = ("", " Co", " Labs", " & Sons", " Works", " Studio")
    names = []
    for c in range(len(CATEGORIES)):
        for b in range(BRANDS_PER_CATEGORY):
            stem = BRAND_STEMS[(c * 7 + b * 3) % len(BRAND_STEMS)]
            names.append(f"{stem}{suffixes[(c + b) % len(suffixes)]}")
    return names


def products_table(catalogue: Catalogue, seed: int) -> pa.Table:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PRODUCTS_KEY, 1)))
    price = catalogue.list_price.copy()
    n_negative = round(dirt.DIRT_RATES["list_price_negative"] * catalogue.size)
    negative = dirt.pick_exact(catalogue.size, n_negative, rng)
    price[negative] = -price[negative]
    return pa.table(
        {
            "product_id": PRODUCT_IDS,
            "category": dictionary_array(CATEGORIES, catalogue.category),
            "brand": dictionary_array(brand_names(), catalogue.brand),
            "list_price": pa.array(price),
        },
    )
