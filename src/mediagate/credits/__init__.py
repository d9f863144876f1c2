"""The credits ledger: grants, holds, captures, releases and refunds."""
