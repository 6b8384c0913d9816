"""Customer-value models: BG/NBD purchases, probability alive, Gamma-Gamma spend and CLV.

The classical "buy till you die" models fitted by maximum likelihood with scipy, on the inputs of
the dbt mart `ml.customer_value_inputs` (frequency, recency, T and mean repeat spend per customer
and snapshot, in days):

- `BetaGeoModel`: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):
  expected purchases in a future window and the probability that a customer is still active.
- `GammaGammaModel`: the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"):
  expected spend per purchase.
- `customer_lifetime_value`: expected purchases over a horizon x expected spend, optionally
  discounted.

A fit that the data cannot support raises `ValueModelError`; callers catch it and leave the
value columns empty.
"""

from ml.value._fitting import ValueModelError, collapse_identical_rows
from ml.value.bgnbd import BetaGeoModel
from ml.value.clv import customer_lifetime_value
from ml.value.gamma_gamma import GammaGammaModel

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ValueModelError",
    "collapse_identical_rows",
    "customer_lifetime_value",
]
