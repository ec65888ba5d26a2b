"""Coupons: campaigns, stock, claims, redemption at payment, flash sales."""
