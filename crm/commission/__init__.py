"""Commission: contracts per agency, a ledger never edited, monthly statements."""
