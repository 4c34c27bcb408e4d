"""Customer lifetime value: BG/NBD (purchases and P(alive)), Gamma-Gamma (spend per purchase) and
BG/BB (discrete periods), fitted by maximum likelihood with scipy; the trained model adds
``p_alive``, ``expected_purchases_90d``, ``expected_spend`` and ``clv_12m`` to the customers."""
