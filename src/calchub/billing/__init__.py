"""Billing (Stripe): this server has no payment backend."""
