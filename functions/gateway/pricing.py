"""Model prices and money: what tokens cost, metered in whole nano-dollars."""

from __future__ import annotations

from dataclasses import dataclass

#: Money is metered in nano-dollars (10^-9 USD), whole numbers, as DynamoDB adds them exactly.
NANO_PER_USD = 1_000_000_000


@dataclass(frozen=True)
class ModelPrice:
    """A model's on-demand price in US dollars per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float

    def cost_nano(self, input_tokens: int, output_tokens: int) -> int:
        """What these tokens cost, in nano-dollars, rounded up (never under-charged)."""
        return _nano(input_tokens * self.input_per_1k) + _nano(output_tokens * self.output_per_1k)

    def output_nano(self, output_tokens: int) -> int:
        return _nano(output_tokens * self.output_per_1k)

    def input_nano(self, input_tokens: int) -> int:
        return _nano(input_tokens * self.input_per_1k)

    def to_document(self) -> dict[str, float]:
        return {"inputPer1k": self.input_per_1k, "outputPer1k": self.output_per_1k}


def _nano(per_1k_total: float) -> int:
    """USD-per-1k times tokens, as whole nano-dollars rounded up (``x / 1000 * 10^9``)."""
    exact = per_1k_total * (NANO_PER_USD // 1000)
    whole = int(exact)
    return whole if whole >= exact - 1e-6 else whole + 1
